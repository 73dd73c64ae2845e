"""Experiments: the paper's analyses and the agent leaderboard, behind the ``penguin-gym`` command.

Each module is one script with a typed args dataclass that is its command line (``python -m
experiments.<name> --help``): ``context_gap`` (paper 4.1-4.2), ``attribute_importance`` (4.3),
``budget`` (4.4), ``raise_table`` (Table 2), ``leaderboard`` (``penguin-gym benchmark``), ``play``,
``train_ppo``; ``common`` holds the shared machinery (resumable results folders, statistics, plots,
W&B) and ``cli`` the ``penguin-gym`` entry point.
"""
