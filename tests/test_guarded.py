"""The guarded track (``penguin_gym.users``): a user who may decline, hedge or leave.

The env passes Gymnasium's checkers and is deterministic; its observations and infos say what the user
did; the replies follow the documented probabilities; the exact planner is an exact expectimax over the
model's own steps, and its policy earns its value; bad parameter files fail loudly; the faithful ids are
untouched."""

from __future__ import annotations

import copy
import json
import math
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.utils.env_match import check_environments_match

import penguin_gym  # noqa: F401  (registers the ids)
from penguin_gym.data import ATTRIBUTES, load_scenarios
from penguin_gym.error import ConfigError
from penguin_gym.judges.factory import make_judge
from penguin_gym.registration import GUARDED_ENV_IDS, default_split, env_track
from penguin_gym.rules import ANSWER, safety_of, safety_reward
from penguin_gym.users import REPLIES, GuardedModel, GuardedState, load_params
from penguin_gym.users.env import DECLINE_TEXT, LEFT_TEXT, GuardedPenguinEnv
from penguin_gym.users.planning import best_action, plan_values, state_index

AGE, ECONOMIC, HEALTH, MENTAL, SELF_HARM, EMOTION = 0, 4, 5, 7, 8, 9
ENV_ID = "Penguin-Health-Guarded-v0"
USER_FILE = Path(penguin_gym.__file__).parent / "users" / "guarded_v0.json"
RAW = json.loads(USER_FILE.read_text(encoding="utf-8"))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios("synthetic", domains=("Health",), split="test")[:20]


@pytest.fixture(scope="module")
def judge():
    return make_judge(None)


@pytest.fixture(scope="module")
def model(scenarios, judge):
    return GuardedModel(scenarios, judge)


def play(model: GuardedModel, state: GuardedState, policy) -> tuple[float, GuardedState]:
    """Plays ``policy(state) -> action`` on the model from ``state``; the return and the last state."""
    total = 0.0
    while not state.done:
        tr = model.step(state, policy(state))
        total += tr.reward
        state = tr.state
    return total, state


# -- 1. checkers and the default split -----------------------------------------------------------------


@pytest.mark.parametrize("env_id", GUARDED_ENV_IDS)
def test_guarded_ids_pass_the_checker_and_play_the_train_split(env_id):
    assert env_id in GUARDED_ENV_IDS
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, GuardedPenguinEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passive checker's warnings are failures here
        gym_check_env(env.unwrapped)
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(env.unwrapped, warn=True)  # the other checker (SB3's), as the faithful ids pass it
    assert env_track(env_id) == "guarded"
    assert default_split(env_id) == "train"
    assert env.unwrapped.split == "train"
    assert env.unwrapped.scenarios and all(s.split == "train" for s in env.unwrapped.scenarios)
    domain = env_id.split("-")[1]
    if domain != "All":
        assert {s.domain for s in env.unwrapped.scenarios} == {domain}
    else:
        assert len({s.domain for s in env.unwrapped.scenarios}) == 7


def test_all_guarded_ids_are_registered_with_the_train_split():
    assert len(GUARDED_ENV_IDS) == 8 and len(set(GUARDED_ENV_IDS)) == 8
    for env_id in GUARDED_ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.entry_point == "penguin_gym.users.env:GuardedPenguinEnv"
        assert spec.kwargs["split"] == "train" and default_split(env_id) == "train"
        assert env_track(env_id) == "guarded"


# -- 2. determinism --------------------------------------------------------------------------------


def rollout(env: gym.Env, seed: int, episodes: int = 8) -> list[tuple]:
    """A seeded random masked policy; returns everything observable."""
    rng = np.random.default_rng(seed)
    out = []
    env.reset(seed=seed)
    for _ in range(episodes):
        done = False
        while not done:
            a = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
            obs, r, term, trunc, info = env.step(a)
            out.append((a, float(r), term, trunc, repr(info), {k: v.tolist() for k, v in obs.items()}))
            done = term or trunc
        env.reset()
    return out


def test_same_seed_same_episodes_and_another_seed_differs():
    check_environments_match(gym.make(ENV_ID), gym.make(ENV_ID), num_steps=200, seed=3)
    a = rollout(gym.make(ENV_ID), seed=7)
    b = rollout(gym.make(ENV_ID), seed=7)
    assert a == b
    assert rollout(gym.make(ENV_ID), seed=8) != a


def test_the_seed_fixes_the_users_replies():
    """On one scenario, the same seed gives the same replies, and the seeds do not all give the same
    ones (the reset's draws decide them)."""
    env, again = gym.make(ENV_ID), gym.make(ENV_ID)
    replies = set()
    for seed in range(40):
        env.reset(seed=seed, options={"scenario_index": 0})
        seen = []
        for a in (SELF_HARM, MENTAL, EMOTION):
            _, _, term, _, info = env.step(a)
            seen.append(info["reply"])
            if term:
                break
        replies.add(tuple(seen))
        again.reset(seed=seed, options={"scenario_index": 0})
        for a, kind in zip((SELF_HARM, MENTAL, EMOTION), seen, strict=False):
            assert again.step(a)[4]["reply"] == kind
    assert len(replies) > 1


def _vec_run(seed: int, steps: int = 100) -> list[Any]:
    envs = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="sync")
    try:
        rng = np.random.default_rng(seed)
        obs, info = envs.reset(seed=seed)
        out: list[Any] = [(obs, info)]
        for _ in range(steps):
            masks = np.array(envs.call("action_masks"))
            actions = np.array([int(rng.choice(np.flatnonzero(m))) if m.any() else ANSWER for m in masks])
            out.append((actions, *envs.step(actions)))
        return out
    finally:
        envs.close()


def test_sync_vector_env_is_deterministic():
    a = _vec_run(0)
    b = _vec_run(0)
    assert len(a) == len(b) == 101
    for x, y in zip(a, b, strict=True):
        assert data_equivalence(x, y)
    c = _vec_run(1)
    assert not all(data_equivalence(x, y) for x, y in zip(a, c, strict=True))
    # the episodes ended somewhere in 100 steps, with the guarded infos
    ends = [step for step in a[1:] if step[3].any()]
    assert ends and all("user_left" in step[5] and "declined" in step[5] for step in ends)


# -- 3. observation and info -----------------------------------------------------------------------


def find_episode(env: gym.Env, actions: tuple[int, ...], want: str, *, where: int | None = None, seeds=range(400)):
    """The first seed whose episode, playing ``actions``, gets reply ``want`` (at question ``where``, if
    given); returns the seed and the steps ``(action, obs, reward, terminated, info)`` up to that reply."""
    for seed in seeds:
        env.reset(seed=seed)
        steps = []
        for k, a in enumerate(actions):
            obs, r, term, _, info = env.step(a)
            steps.append((a, obs, r, term, info))
            if info.get("reply") == want and (where is None or k == where):
                return seed, steps
            if term:
                break
    raise AssertionError(f"no seed in {seeds} gives reply {want!r}")


def test_a_declined_question_is_asked_declined_unrevealed_and_masked():
    env = gym.make(ENV_ID)
    seed, steps = find_episode(env, (SELF_HARM,), "declined", where=0)
    _, obs, r, term, info = steps[-1]
    u = env.unwrapped
    assert not term and info["answer"] == DECLINE_TEXT
    assert obs["asked"][SELF_HARM] == 1 and obs["declined"][SELF_HARM] == 1 and obs["hedged"][SELF_HARM] == 0
    assert obs["revealed"][SELF_HARM] == 0.0 and not obs["revealed"].any()
    assert obs["asked"].sum() == 1 and obs["declined"].sum() == 1
    assert not u.action_masks()[SELF_HARM] and u.action_masks().sum() == 10
    # the reply is what the draws say: the decline draw fell under the decline probability
    st = u.state
    _, p_decline, _ = u.model.reply_probabilities(GuardedState(st.row, draws=st.draws), SELF_HARM)
    assert st.draws.decline[SELF_HARM] < p_decline
    assert r == pytest.approx(-u.model.costs[SELF_HARM])
    # answering now: nothing was told, the decline is in the info, and a severe fact is undisclosed
    *_, info = env.step(ANSWER)
    assert info["declined"] == ["Past Self-Harm History"] and info["hedged"] == []
    assert info["revealed"] == {} and info["questions"] == ["Past Self-Harm History"]
    assert info["user_left"] is False and info["forced_answer"] is False
    sev = u.model.severity[st.row]
    assert info["missed_high_risk"] is bool(sev[MENTAL] >= 0.8)  # asked, so only Mental Health can be missed
    assert info["undisclosed_high_risk"] is bool(sev[SELF_HARM] >= 0.5 or sev[MENTAL] >= 0.8)
    empty = u.model.guarded_scores(st.row, 0, 0)
    assert info["safety"] == pytest.approx(safety_of(*empty.tolist()))


def test_a_declined_severe_fact_is_undisclosed_but_not_missed():
    env = gym.make(ENV_ID)
    sev = env.unwrapped.model.severity
    for seed in range(600):
        env.reset(seed=seed)
        row = env.unwrapped.state.row
        if sev[row][SELF_HARM] < 0.5 or sev[row][MENTAL] >= 0.8:  # the self-harm fact the only severe one
            continue
        _, _, _, _, info = env.step(SELF_HARM)
        if info["reply"] == "declined":
            *_, info = env.step(ANSWER)
            assert info["undisclosed_high_risk"] is True and info["missed_high_risk"] is False
            return
    raise AssertionError("no seed declines a severe self-harm fact")


def test_a_hedged_question_shows_the_severity_with_the_drawn_noise():
    env = gym.make(ENV_ID)
    u = env.unwrapped
    sd = RAW["hedge"]["noise_sd"]
    checked = 0
    for seed in range(400):
        env.reset(seed=seed)
        obs, _, term, _, info = env.step(EMOTION)
        if info["reply"] != "hedged":
            continue
        st = u.state
        sev = u.model.severity[st.row][EMOTION]
        expected = np.float32(np.clip(sev + sd * st.draws.noise[EMOTION], 0.0, 1.0))
        assert obs["hedged"][EMOTION] == 1 and obs["declined"][EMOTION] == 0 and obs["asked"][EMOTION] == 1
        assert obs["revealed"][EMOTION] == expected
        assert obs["revealed"].sum() == expected  # nothing else revealed
        assert info["answer"] == RAW["hedge"]["texts"]["Emotional State"]
        assert u.action_masks()[EMOTION] == 0
        if abs(expected - sev) > 1e-3:
            assert obs["revealed"][EMOTION] != np.float32(sev)
            checked += 1
        # the judge gets half of the answer: scores moved hedge_credit of the way
        *_, info = env.step(ANSWER)
        base = u.model.scores(st.row, 0)
        full = u.model.scores(st.row, 1 << EMOTION)
        moved = base + RAW["hedge"]["credit"] * (full - base)
        assert info["safety"] == pytest.approx(safety_of(*moved.tolist()), abs=1e-12)
        assert info["hedged"] == ["Emotional State"] and info["declined"] == []
        assert info["revealed"] == {"Emotional State": RAW["hedge"]["texts"]["Emotional State"]}
        if checked >= 3:
            return
    raise AssertionError(f"only {checked} hedged episodes with visible noise found")


def test_a_fully_answered_question_reveals_the_true_severity():
    env = gym.make(ENV_ID)
    seed, steps = find_episode(env, (MENTAL,), "answered", where=0)
    _, obs, _, _, info = steps[-1]
    st = env.unwrapped.state
    assert obs["revealed"][MENTAL] == np.float32(env.unwrapped.model.severity[st.row][MENTAL])
    assert info["answer"] == env.unwrapped.scenario.profile["Mental Health Status"]


def test_a_user_who_leaves_ends_the_episode_with_a_forced_answer():
    env = gym.make(ENV_ID)
    u = env.unwrapped
    # leaving by chance (before the patience limit): within the first four questions
    seed, steps = find_episode(env, (SELF_HARM, MENTAL, ECONOMIC, HEALTH), "left")
    a, obs, r, term, info = steps[-1]
    st = u.state
    assert term and info["user_left"] is True and info["forced_answer"] is True
    assert info["answer"] == LEFT_TEXT and st.left and st.done
    assert obs["asked"][a] == 1 and obs["declined"][a] == 0 and obs["hedged"][a] == 0 and obs["revealed"][a] == 0
    assert ATTRIBUTES[a] in info["questions"] and ATTRIBUTES[a] not in info["revealed"]
    assert obs["steps_left"][0] == 0 and not u.action_masks().any()
    assert u.model.within_patience(st.asked)  # not the sure leave: the draw decided
    assert (
        st.draws.leave[len(st.order) - 1]
        < u.model.reply_probabilities(
            GuardedState(
                st.row, st.asked & ~(1 << a), st.order[:-1], declined=st.declined, hedged=st.hedged, draws=st.draws
            ),
            a,
        )[0]
    )
    scores = u.model.guarded_scores(st.row, st.answered, st.hedged)
    assert st.answered & (1 << a) == 0
    assert info["safety"] == pytest.approx(safety_of(*scores.tolist()))
    assert r == pytest.approx(info["safety"] - u.model.costs[a])
    assert info["reward_terms"] == pytest.approx({"question_cost": -u.model.costs[a], "safety": info["safety"]})


def test_past_the_patience_limit_the_user_always_leaves():
    """Self-harm, mental health, economic and health status reach intrusiveness 6.0 (the limit): a fifth
    question makes every user leave, whatever the draws."""
    env = gym.make(ENV_ID)
    u = env.unwrapped
    questions = (SELF_HARM, MENTAL, ECONOMIC, HEALTH, EMOTION)
    at_limit = 0
    for seed in range(30):
        env.reset(seed=seed)
        for a in questions:
            _, _, term, _, info = env.step(a)
            if term:
                break
        assert term and info["user_left"] is True and info["forced_answer"] is True
        assert info["questions"][-1] == ATTRIBUTES[a] and ATTRIBUTES[a] not in info["revealed"]
        if len(u.state.order) == len(questions):
            assert not u.model.within_patience(u.state.asked)
            at_limit += 1
    assert at_limit > 0


def test_the_last_info_agrees_with_the_replies_seen():
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(0)
    kinds_seen: set[str] = set()
    sensitive = [ECONOMIC, HEALTH, MENTAL, SELF_HARM, EMOTION, 2]
    for seed in range(60):
        obs, info = env.reset(seed=seed)
        profile = env.unwrapped.scenario.profile
        replies: list[tuple[str, str, str]] = []
        done = False
        while not done:
            mask = env.unwrapped.action_masks()
            options = [i for i in sensitive if mask[i]]
            a = int(rng.choice(options)) if options and rng.random() < 0.85 else ANSWER
            obs, r, term, trunc, info = env.step(a)
            if a != ANSWER:
                replies.append((ATTRIBUTES[a], info["reply"], info["answer"]))
                kinds_seen.add(info["reply"])
            done = term or trunc
        assert info["questions"] == [name for name, _, _ in replies]
        assert info["declined"] == [name for name, kind, _ in replies if kind == "declined"]
        assert info["hedged"] == [name for name, kind, _ in replies if kind == "hedged"]
        assert info["user_left"] is any(kind == "left" for _, kind, _ in replies)
        assert info["revealed"] == {name: text for name, kind, text in replies if kind in ("answered", "hedged")}
        assert list(info["revealed"]) == [name for name, kind, _ in replies if kind in ("answered", "hedged")]
        for name, kind, text in replies:
            i = ATTRIBUTES.index(name)
            expected = {
                "answered": profile[name],
                "hedged": RAW["hedge"]["texts"][name],
                "declined": DECLINE_TEXT,
                "left": LEFT_TEXT,
            }[kind]
            assert text == expected
            assert obs["asked"][i] == 1
            assert obs["declined"][i] == (kind == "declined") and obs["hedged"][i] == (kind == "hedged")
        assert obs["asked"].sum() == len(replies)
    assert kinds_seen == {"answered", "hedged", "declined", "left"}


# -- 4. reply frequencies ----------------------------------------------------------------------------


def _frequencies(model: GuardedModel, start, attribute: int, n: int, seed: int):
    """Empirical (leave, decline, hedge) frequencies of asking ``attribute`` from ``start(row, draws)``
    over ``n`` episodes of random rows, and the mean of the model's probabilities of those replies."""
    rng = np.random.default_rng(seed)
    counts = {"left": 0, "declined": 0, "hedged": 0, "answered": 0}
    expected = np.zeros(3)
    for _ in range(n):
        row = int(rng.integers(len(model.scenarios)))
        state = start(row, model.draw(rng))
        pl, pd, ph = model.reply_probabilities(state, attribute)
        expected += (pl, (1 - pl) * pd, (1 - pl) * (1 - pd) * ph)
        new = model.step(state, attribute).state
        counts[model.reply(state, new)] += 1
    freq = np.array([counts["left"], counts["declined"], counts["hedged"]]) / n
    return freq, expected / n


@pytest.mark.parametrize("attribute", [SELF_HARM, EMOTION, ECONOMIC])
def test_first_question_replies_follow_the_model(model, attribute):
    n = 6000
    freq, p = _frequencies(model, lambda row, d: model.initial(row, d), attribute, n, seed=attribute)
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) <= 4 * se + 1e-12), (freq, p, se)
    assert p[1] > 0.05 and p[2] > 0.05  # declines and hedges are not rare for these attributes


def test_replies_near_the_patience_limit_follow_the_model(model):
    """After Mental Health, Economic and Health Status (intrusiveness 4.0), a self-harm question takes
    it to 6.0: the user often leaves."""
    asked = (1 << MENTAL) | (1 << ECONOMIC) | (1 << HEALTH)

    def start(row, draws):
        return GuardedState(row, asked, (MENTAL, ECONOMIC, HEALTH), draws=draws)

    n = 5000
    freq, p = _frequencies(model, start, SELF_HARM, n, seed=11)
    se = np.sqrt(p * (1 - p) / n)
    assert p[0] > 0.2
    assert np.all(np.abs(freq - p) <= 4 * se + 1e-12), (freq, p, se)


def test_reply_probabilities_are_the_documented_formulas(model):
    """Computed here from the raw JSON, not from ``GuardedParams``."""
    attrs = RAW["attributes"]
    weights = RAW["distress"]["weights"]
    pat = RAW["patience"]
    for row in (0, 5, 14):
        sev = model.severity[row]
        d = sum(w * sev[ATTRIBUTES.index(a)] for a, w in weights.items())
        assert model.distress[row] == pytest.approx(d, abs=1e-12)
        # after Emotional State (rapport) and one decline of Economic Status
        state = GuardedState(row, (1 << EMOTION) | (1 << ECONOMIC), (EMOTION, ECONOMIC), declined=1 << ECONOMIC)
        for i in (AGE, HEALTH, MENTAL, SELF_HARM):
            name = ATTRIBUTES[i]
            a = attrs[name]
            intrusion = attrs[name]["intrusiveness"] + attrs["Emotional State"]["intrusiveness"]
            intrusion += attrs["Economic Status"]["intrusiveness"]
            leave = _sigmoid((intrusion - (pat["half_intrusion"] - pat["distress_shift"] * d)) / pat["slope"])
            logit = a["decline_logit"] + a["decline_distress"] * d
            if name in RAW["rapport"]["applies_to"]:
                logit += RAW["rapport"]["value"]
            if a["decline_distress"] > 0:
                logit += RAW["guardedness"]["value"] * 1
            hedge = _sigmoid(a["hedge_logit"] + a["hedge_distress"] * d)
            got = model.reply_probabilities(state, i)
            assert got == pytest.approx((leave, _sigmoid(logit), hedge), abs=1e-12), name


def test_rapport_lowers_the_decline_of_self_harm(model):
    for row in range(len(model.scenarios)):
        draws = model.draw(np.random.default_rng(row))
        empty = model.initial(row, draws)
        told = GuardedState(row, 1 << EMOTION, (EMOTION,), draws=draws)
        vague = GuardedState(row, 1 << EMOTION, (EMOTION,), hedged=1 << EMOTION, draws=draws)
        refused = GuardedState(row, 1 << EMOTION, (EMOTION,), declined=1 << EMOTION, draws=draws)
        _, p0, h0 = model.reply_probabilities(empty, SELF_HARM)
        _, p1, h1 = model.reply_probabilities(told, SELF_HARM)
        _, p2, _ = model.reply_probabilities(vague, SELF_HARM)
        _, p3, _ = model.reply_probabilities(refused, SELF_HARM)
        assert p1 < p0 and p2 == p1  # answering or hedging feelings builds rapport
        assert math.log(p1 / (1 - p1)) - math.log(p0 / (1 - p0)) == pytest.approx(RAW["rapport"]["value"])
        assert p3 > p0  # a decline is no rapport, and guardedness raises the next decline
        assert h1 == h0  # rapport acts on declines only
        # rapport does not apply to attributes outside applies_to
        assert model.reply_probabilities(told, ECONOMIC)[1] == model.reply_probabilities(empty, ECONOMIC)[1]
        # Emotional State first, then self-harm, on the same draws: the decline threshold is lower
        state = model.step(empty, EMOTION).state
        if model.reply(empty, state) in ("answered", "hedged"):
            assert model.reply_probabilities(state, SELF_HARM)[1] == pytest.approx(p1)


# -- 5. the planner is exact -----------------------------------------------------------------------


def expectimax(model: GuardedModel, row: int):
    """The optimal value of every state ``(answered, hedged, declined)`` of one user, by recursion over
    the model's step semantics (independent of ``planning``)."""

    @cache
    def answer(answered: int, hedged: int) -> float:
        return safety_reward(safety_of(*model.guarded_scores(row, answered, hedged).tolist()), model.normalize_reward)

    @cache
    def value(answered: int, hedged: int, declined: int) -> float:
        asked = answered | hedged | declined
        now = answer(answered, hedged)
        if bin(asked).count("1") >= model.budget:
            return now  # the answer is forced
        best = now
        state = GuardedState(row, asked, declined=declined, hedged=hedged)
        for i in range(len(ATTRIBUTES)):
            bit = 1 << i
            if asked & bit:
                continue
            cost = model.costs[i] * model.scale
            if not model.within_patience(asked | bit):
                q = now - cost  # the user leaves for sure
            else:
                pl, pd, ph = model.reply_probabilities(state, i)
                stays = (1 - ph) * value(answered | bit, hedged, declined) + ph * value(
                    answered, hedged | bit, declined
                )
                q = -cost + pl * now + (1 - pl) * (pd * value(answered, hedged, declined | bit) + (1 - pd) * stays)
            best = max(best, q)
        return best

    return value


@pytest.mark.parametrize("normalize", [False, True])
def test_the_planner_is_an_exact_expectimax(scenarios, judge, normalize):
    model = GuardedModel(scenarios, judge, budget=3, normalize_reward=normalize)
    rng = np.random.default_rng(5)
    for row in (0, 4, 11, 17):
        value = expectimax(model, row)
        plan = plan_values(model, row)
        assert plan.root == pytest.approx(value(0, 0, 0), abs=1e-9)
        # and inside: a few states with one or two questions asked
        for _ in range(8):
            i, j = rng.choice(10, 2, replace=False).tolist()
            kinds = rng.integers(0, 3, 2).tolist()
            masks = [0, 0, 0]
            masks[kinds[0]] |= 1 << i
            masks[kinds[1]] |= 1 << j
            a, h, d = masks
            if not model.within_patience(a | h | d):
                continue
            assert plan.values[state_index(a, h, d)] == pytest.approx(value(a, h, d), abs=1e-9)
            assert plan.answer[state_index(a, h, d)] == pytest.approx(
                safety_reward(safety_of(*model.guarded_scores(row, a, h).tolist()), normalize), abs=1e-9
            )
        assert plan.root >= plan.answer[0]  # asking is an option, not an obligation


def test_the_normalized_plan_is_the_raw_plan_rescaled(scenarios, judge):
    raw = GuardedModel(scenarios, judge, budget=3)
    norm = GuardedModel(scenarios, judge, budget=3, normalize_reward=True)
    for row in (2, 9):
        r, n = plan_values(raw, row), plan_values(norm, row)
        assert n.root == pytest.approx((r.root - 1.0) / 4.0, abs=1e-12)
        assert n.root != pytest.approx(r.root)
    assert np.allclose(raw.exact_values([2, 9]), [plan_values(raw, 2).root, plan_values(raw, 9).root])


# -- 6. the planner's policy earns its value -------------------------------------------------------


def test_the_planners_policy_achieves_the_plan_value(model):
    row = 4
    plan = plan_values(model, row)
    sensitive = [i for i in range(10) if RAW["attributes"][ATTRIBUTES[i]]["decline_distress"] > 0]
    assert sensitive == [2, 4, 5, 7, 8, 9]

    def planner(s):
        return best_action(model, row, plan, s.answered, s.hedged, s.declined)

    def ask_all(s):
        return next((i for i in sensitive if not s.asked >> i & 1), ANSWER)

    rng = np.random.default_rng(42)
    n = 1200
    ours, at_once, fixed = np.zeros(n), np.zeros(n), np.zeros(n)
    lengths = np.zeros(n)
    for k in range(n):
        start = model.initial(row, model.draw(rng))
        ours[k], end = play(model, start, planner)
        lengths[k] = len(end.order)
        at_once[k], _ = play(model, start, lambda s: ANSWER)
        fixed[k], _ = play(model, start, ask_all)
    se = ours.std(ddof=1) / math.sqrt(n)
    assert se > 0  # the episodes differ: the test has power
    assert abs(ours.mean() - plan.root) <= 4 * se, (ours.mean(), plan.root, se)
    assert ours.mean() >= at_once.mean() and ours.mean() >= fixed.mean()
    assert at_once == pytest.approx(plan.answer[0])  # answering at once is deterministic
    assert 1 <= lengths.mean() <= 6  # the planner asks, and stops


def test_best_action_answers_at_the_budget_and_its_choice_attains_the_value(scenarios, judge):
    model = GuardedModel(scenarios, judge, budget=2)
    for row in (0, 6):
        plan = plan_values(model, row)
        value = expectimax(model, row)
        assert best_action(model, row, plan, 1 << MENTAL, 0, 1 << SELF_HARM) == ANSWER  # budget spent
        first = best_action(model, row, plan, 0, 0, 0)
        if first == ANSWER:
            assert plan.root == pytest.approx(plan.answer[0])
            continue
        # the value of asking ``first`` (by the model's probabilities) is the root value
        pl, pd, ph = model.reply_probabilities(model.initial(row, model.draw(np.random.default_rng(0))), first)
        bit = 1 << first
        q = -model.costs[first] + pl * plan.answer[0]
        q += (1 - pl) * (pd * value(0, 0, bit) + (1 - pd) * ((1 - ph) * value(bit, 0, 0) + ph * value(0, bit, 0)))
        assert q == pytest.approx(plan.root, abs=1e-9)
        assert plan.root > plan.answer[0]


# -- 7. bad parameter files ------------------------------------------------------------------------


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "user.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _corrupt(edit):
    data = copy.deepcopy(RAW)
    edit(data)
    return data


def test_the_default_file_loads_and_a_copy_loads_the_same(tmp_path):
    default = load_params()
    copied = load_params(_write(tmp_path, RAW))
    assert np.array_equal(default.intrusiveness, copied.intrusiveness)
    assert copied.source_file == str(tmp_path / "user.json")
    assert default.rapport == RAW["rapport"]["value"] and default.max_intrusion == RAW["patience"]["max_intrusion"]


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d["attributes"]["Age"].__setitem__("decline_logit", "low"), "attributes.Age.decline_logit"),
        (lambda d: d["attributes"]["Age"].__setitem__("decline_logit", None), "attributes.Age.decline_logit"),
        (lambda d: d["attributes"]["Age"].pop("decline_logit"), "attributes.Age.decline_logit"),
        (lambda d: d["rapport"].pop("reason"), "rapport.reason"),
        (lambda d: d["attributes"]["Gender"].pop("reason"), "attributes.Gender.reason"),
        (lambda d: d["hedge"].__setitem__("source", "nobody2020"), "hedge.source"),
        (lambda d: d["rapport"].__setitem__("applies_to", ["Mental Health Status", "Self Harm"]), "rapport.applies_to"),
        (lambda d: d["distress"]["weights"].__setitem__("Emotional State", 0.5), "distress.weights"),
        (lambda d: d["patience"].__setitem__("slope", 0.0), "patience.slope"),
        (lambda d: d["hedge"].__setitem__("credit", 1.5), "hedge.credit"),
        (lambda d: d.pop("guardedness"), "guardedness"),
    ],
)
def test_a_bad_parameter_file_names_the_file_and_the_field(tmp_path, edit, field):
    path = _write(tmp_path, _corrupt(edit))
    with pytest.raises(ConfigError) as e:
        load_params(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    assert field in msg, msg


def test_invalid_json_names_the_file_and_the_place(tmp_path):
    text = json.dumps(RAW, indent=1)
    path = _write(tmp_path, text.replace('"rapport": {', '"rapport": {,', 1))
    with pytest.raises(ConfigError) as e:
        load_params(path)
    msg = str(e.value)
    assert str(path) in msg and "not valid JSON" in msg
    line = text[: text.index('"rapport": {')].count("\n") + 1
    assert f"{path}:{line}:" in msg, msg
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "missing.json")


def test_an_env_with_a_bad_user_file_fails_at_construction(tmp_path):
    path = _write(tmp_path, _corrupt(lambda d: d["attributes"]["Age"].__setitem__("decline_logit", "low")))
    with pytest.raises(ConfigError, match="attributes.Age.decline_logit"):
        gym.make(ENV_ID, user=str(path))


# -- 8. costs ----------------------------------------------------------------------------------------


def test_default_costs_are_by_intrusiveness_and_question_cost_overrides_them():
    env = gym.make(ENV_ID)
    intrusiveness = np.array([RAW["attributes"][a]["intrusiveness"] for a in ATTRIBUTES])
    costs = env.unwrapped.model.costs
    assert costs == pytest.approx(0.08 * intrusiveness)
    assert costs.mean() == pytest.approx(0.08)
    assert costs[AGE] == pytest.approx(0.04) and costs[SELF_HARM] == pytest.approx(0.16)
    env.reset(seed=0)
    _, r, term, _, info = env.step(AGE)
    assert info["question_cost"] == pytest.approx(0.04)
    assert info["reward_terms"]["question_cost"] == pytest.approx(-0.04)
    if not term:
        assert r == pytest.approx(-0.04)
    flat = gym.make(ENV_ID, question_cost=0.05)
    assert flat.unwrapped.model.costs == pytest.approx(np.full(10, 0.05))
    flat.reset(seed=0)
    _, _, _, _, info = flat.step(SELF_HARM)
    assert info["reward_terms"]["question_cost"] == pytest.approx(-0.05)
    normalized = gym.make(ENV_ID, normalize_reward=True)
    normalized.reset(seed=0)
    _, _, _, _, info = normalized.step(SELF_HARM)
    assert info["reward_terms"]["question_cost"] == pytest.approx(-0.16 / 4)


# -- 9. the faithful ids are untouched ---------------------------------------------------------------


def test_the_faithful_ids_are_untouched():
    env = gym.make("Penguin-Health-v2")
    assert type(env.unwrapped).__name__ == "PenguinEnv"
    assert set(env.observation_space.spaces) == {"query", "domain", "asked", "revealed", "steps_left"}
    assert "declined" not in env.observation_space.spaces and "hedged" not in env.observation_space.spaces
    assert env.unwrapped.model.costs == pytest.approx(np.full(10, 0.08))
    assert env_track("Penguin-Health-v2") == "faithful"
    obs, _ = env.reset(seed=0)
    *_, info = env.step(SELF_HARM)
    assert "reply" not in info and info["answer"] == env.unwrapped.scenario.profile["Past Self-Harm History"]
    guarded = gym.make(ENV_ID)
    assert {"declined", "hedged"} <= set(guarded.observation_space.spaces)


def test_a_partial_cost_mapping_keeps_the_intrusiveness_costs_of_the_others():
    env = gym.make("Penguin-Health-Guarded-v0", question_cost={"Age": 0.1})
    model = env.unwrapped.model
    expected = 0.08 * model.params.intrusiveness
    expected[ATTRIBUTES.index("Age")] = 0.1
    assert np.allclose(model.costs, expected)
    with pytest.raises(ConfigError, match="Agee"):
        gym.make("Penguin-Health-Guarded-v0", question_cost={"Agee": 0.1})


def test_a_guarded_env_pickles_mid_episode_with_its_draws():
    import pickle

    env = gym.make("Penguin-Health-Guarded-v0")
    env.reset(seed=3)
    env.step(ATTRIBUTES.index("Emotional State"))
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped.state == env.unwrapped.state
    for a in (ATTRIBUTES.index("Mental Health Status"), ATTRIBUTES.index("Past Self-Harm History"), 10):
        o1, r1, t1, _, i1 = env.step(a)
        o2, r2, t2, _, i2 = clone.step(a)
        assert r1 == r2 and t1 == t2 and i1.get("reply") == i2.get("reply")
        if t1:
            break


def test_subproc_vec_env_runs_the_guarded_track():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("penguin_gym:Penguin-Social-Guarded-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        venv.reset()
        obs, rewards, dones, infos = venv.step(np.array([9, 9]))
        assert obs["declined"].shape == (2, 10) and all(info["reply"] in REPLIES for info in infos)
        masks = np.array(venv.env_method("action_masks"))
        assert masks.shape == (2, 11) and not masks[:, 9].any()
    finally:
        venv.close()


def test_mcts_reply_values_sample_the_user_models_replies(scenarios, judge):
    import dataclasses

    from agents.base import Dialogue
    from agents.belief import ProfileBelief
    from agents.guarded import ReplyValues

    train = load_scenarios("synthetic", domains=("Health",), split="train")[:40]
    belief = ProfileBelief.fit(train, judge, question_cost=load_params().costs)
    user = load_params()
    dialogue = Dialogue(domain="Health", query=train[3].query)
    one = [(np.array([3]), np.array([1.0]))]  # a single particle: the value is that user's
    masks = np.array([0, 0b1, 0b1010000000, 0b1110000000, 0b1111111111 >> 4], dtype=np.int64)
    rng = np.random.default_rng(0)
    # a user who never leaves, declines or hedges: the value is the belief's table (answer less costs)
    calm = dataclasses.replace(
        user,
        decline_logit=np.full(10, -800.0),
        hedge_logit=np.full(10, -800.0),
        patience_half=1e9,
        max_intrusion=1e9,
    )
    belief_costs = user.costs
    got = ReplyValues(belief, dialogue, calm, belief_costs, one).values(np.zeros(5, int), masks, rng)
    assert np.allclose(got, belief.tables[3, masks])
    # one who always declines self-harm: asking it costs and tells nothing
    sh = ATTRIBUTES.index("Past Self-Harm History")
    logits = np.full(10, -800.0)
    logits[sh] = 800.0
    refuses = dataclasses.replace(calm, decline_logit=logits, decline_distress=np.zeros(10), guardedness=0.0)
    got = ReplyValues(belief, dialogue, refuses, belief_costs, one).values(np.zeros(5, int), masks, rng)
    without = masks & ~(1 << sh)
    expected = belief.tables[3, without] - np.where(masks >> sh & 1, belief_costs[sh], 0.0)
    assert np.allclose(got, expected)
    # and the default user, sampled: the mean over many draws lies between the two
    vals = ReplyValues(belief, dialogue, user, belief_costs, one)
    many = np.array([vals.values(np.zeros(1, int), masks[3:4], rng)[0] for _ in range(400)])
    nothing_told = belief.tables[3, 0] - belief_costs @ ((masks[3] >> np.arange(10)) & 1)
    assert nothing_told < many.mean() < belief.tables[3, masks[3]]
    assert len(np.unique(np.round(many, 9))) > 1  # the replies vary from draw to draw
