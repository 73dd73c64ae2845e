"""The two tracks side by side: the faithful ids' agents give the numbers they gave before the guarded
track existed, and the guarded track's numbers are pinned to its version.

The faithful values were computed at commit 9025390 (before ``penguin_gym.users`` and the guarded hooks
in greedy, MCTS, RAISE, the belief and ``evaluate``) and are reproduced to nine decimals: the hooks
change nothing where every question is answered. The guarded values pin ``Penguin-*-Guarded-v0`` with
user model ``guarded-v0``: a change to them is a new version of the track.
"""

from __future__ import annotations

import pytest

from agents import evaluate, make_agent

FAITHFUL = {  # agent: (net reward mean, regret mean, questions mean) on 40 Health test users, seed 0
    "greedy": (4.281650334, 0.070639548, 3.325),
    "mcts": (4.282598929, 0.069690953, 3.2),
    "raise": (4.281567686, 0.070722196, 2.9),
    "static": (4.183809302, 0.16848058, 3.0),
    "oracle": (4.352289882, 0.0, 2.65),
}
GUARDED = {
    "greedy": (3.987154174, 0.000641044, 2.825),
    "static": (3.778261495, 0.209533723, 2.975),
    "oracle": (3.979085222, 0.008709996, 2.8),
}


def _numbers(agent: str, env_id: str) -> tuple[float, float, float]:
    s = evaluate(make_agent(agent), env_id, episodes=40, seed=0, split="test").summary
    return round(s["net_reward_mean"], 9), round(s["regret_mean"], 9), s["questions_mean"]


@pytest.mark.parametrize("agent", sorted(FAITHFUL))
def test_the_faithful_track_gives_the_numbers_it_gave_before_the_guarded_track(agent):
    assert _numbers(agent, "Penguin-Health-v2") == FAITHFUL[agent]


@pytest.mark.parametrize("agent", sorted(GUARDED))
def test_the_guarded_track_is_pinned_to_its_version(agent):
    assert _numbers(agent, "Penguin-Health-Guarded-v0") == GUARDED[agent]


def test_the_tracks_differ_where_users_decline():
    # the same users, the same agent: the guarded user's replies and costs change the episode
    assert _numbers("static", "Penguin-Health-Guarded-v0")[0] < _numbers("static", "Penguin-Health-v2")[0] - 0.2


# -- the leaderboard and the behaviour report on the guarded track -------------------------------------

TINY = ["--domains", "Health", "--max-scenarios", "12", "--no-wandb", "--no-progress"]


@pytest.fixture(scope="module")
def guarded_board(tmp_path_factory):
    from experiments import leaderboard

    out = tmp_path_factory.mktemp("guarded") / "board"
    args = [*TINY, "--track", "guarded", "--out", str(out), "--agents", "static", "greedy", "ask-all", "oracle"]
    assert leaderboard.main(args) == 0
    return out


def test_the_guarded_leaderboard_records_its_track_and_its_replies(guarded_board):
    import json

    s = json.loads((guarded_board / "summary.json").read_text())
    assert s["env"]["track"] == "guarded" and s["env"]["ids"] == {"Health": "Penguin-Health-Guarded-v0"}
    assert s["env"]["user_model"]["name"] == "guarded-v0"
    rows = [json.loads(x) for x in (guarded_board / "rows.jsonl").read_text().splitlines() if "__unit" not in x]
    assert rows and all({"declined", "hedged", "user_left", "undisclosed_high_risk"} <= set(r) for r in rows)
    ask_all = [r for r in rows if r["agent"] == "ask-all"]
    # asking everything in attribute order runs into the patience limit: every such user leaves
    assert all(r["user_left"] for r in ask_all) and all(r["num_questions"] < 10 for r in ask_all)
    # the regret reference is the exact planner's expected return, the oracle's own on average
    oracle = [r for r in rows if r["agent"] == "oracle"]
    assert all(r["oracle_net_reward"] is not None for r in oracle)
    assert abs(sum(r["regret"] for r in oracle) / len(oracle)) < 0.15


def test_a_faithful_leaderboard_keeps_its_results_folder_and_rows(tmp_path):
    import json

    from experiments import leaderboard
    from experiments.args import config_dict, parse_args
    from experiments.results import config_hash

    argv = [*TINY, "--out", str(tmp_path / "f"), "--agents", "static"]
    out = tmp_path / "f"
    assert leaderboard.main(argv) == 0
    saved = json.loads((out / "config.json").read_text())
    hashed = config_dict(parse_args(leaderboard.Args, argv), hashed_only=True)
    assert hashed.pop("track") == "faithful"
    # the folder's hash leaves the faithful track out, as before the guarded track existed
    assert saved["hash"] == config_hash("leaderboard", hashed, saved["extra"])
    assert saved["hash"] != config_hash("leaderboard", {**hashed, "track": "faithful"}, saved["extra"])
    row = json.loads((out / "rows.jsonl").read_text().splitlines()[0])
    assert "declined" not in row and "user_left" not in row


def test_behaviour_reports_what_the_rows_say(guarded_board, capsys):
    import json

    from experiments import behaviour

    rows = [json.loads(x) for x in (guarded_board / "rows.jsonl").read_text().splitlines() if "__unit" not in x]
    static = behaviour.agent_behaviour([r for r in rows if r["agent"] == "static"])
    assert static["first"] == "emotion 100%" and static["feelings_first"] == "100%"
    mine = [r for r in rows if r["agent"] == "ask-all"]
    b = behaviour.agent_behaviour(mine)
    assert b["user_left"] == "100%" and b["first"] == "Age 100%"
    asked = sum(r["num_questions"] for r in mine)
    assert b["declined"] == f"{100 * sum(len(r['declined']) for r in mine) / asked:.0f}%"
    assert behaviour.main(["--from", str(guarded_board)]) == 0
    out = capsys.readouterr().out
    assert "Behaviour on the guarded track" in out and "declined" in out and "ask-all" in out


def test_greedy_blind_is_greedy_where_nobody_declines_and_worse_where_users_do():
    assert _numbers("greedy-blind", "Penguin-Health-v2") == FAITHFUL["greedy"]
    blind = evaluate(make_agent("greedy-blind"), "Penguin-Health-Guarded-v0", episodes=150, seed=1, split="test")
    aware = evaluate(make_agent("greedy"), "Penguin-Health-Guarded-v0", episodes=150, seed=1, split="test")
    assert blind.agent == "greedy-blind"
    # the same users and the same replies to the same questions (common random numbers)
    assert aware.summary["net_reward_mean"] > blind.summary["net_reward_mean"] + 0.02
