"""Experiments: the paper's analyses and the agent leaderboard, behind the ``penguin-gym`` command.

Each module is one script with a typed args dataclass that is its command line (``python -m
experiments.<name> --help``): ``context_gap`` (paper 4.1-4.2), ``attribute_importance`` (4.3),
``budget`` (4.4), ``raise_table`` (Table 2), ``leaderboard`` (``penguin-gym benchmark``), ``play``,
``train_ppo``, ``check_data``, ``build_table``, ``refit_judge``; ``cli`` is the ``penguin-gym`` entry
point. The shared machinery is one module per concern: ``args`` (options from the args dataclasses),
``results`` (resumable results folders, with ``locking``), ``scenarios``, ``evaluation``, ``judging``,
``stats``, ``terminal`` (tables, progress), ``tracking`` (W&B), ``plots``, ``loading`` (agents by
name or file).
"""
