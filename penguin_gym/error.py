"""All exceptions raised by penguin-gym, in one place (as in Gymnasium's ``gymnasium.error``)."""

from __future__ import annotations


class PenguinError(Exception):
    """Base class of every penguin-gym error."""


class InvalidScenarioError(PenguinError, ValueError):
    """A scenario record, field or value is malformed."""


class DataFormatError(PenguinError, ValueError):
    """A data file cannot be parsed; the message names the file, the record (line) and the field."""


class InvalidActionError(PenguinError, ValueError):
    """An action is out of range, or masked under the ``invalid_action="raise"`` policy."""


class ConfigError(PenguinError, ValueError):
    """A configuration value (env kwarg, judge parameter, CLI option) is invalid."""


class JudgeError(PenguinError, RuntimeError):
    """A judge could not produce a score (after its retries); never replaced by a default score."""


class JudgeParseError(JudgeError):
    """A judge's reply could not be read as the three rubric scores."""


class BackendError(PenguinError, RuntimeError):
    """An LLM backend failed (HTTP error after retries, timeout, bad response)."""


class RequestError(BackendError):
    """One request to an LLM backend failed, the others of its batch stand.

    Attributes:
        cause: ``"refused"`` (a provider's content filter or a refusal status), ``"http_error"`` (another
            4xx), ``"timeout"`` (the request's deadline passed on every attempt), ``"server_error"`` (429 or
            5xx on every attempt), ``"connection"``, ``"malformed"`` (a body that is not a completion).
        permanent: Whether asking again cannot help (a 4xx, a refusal): the item is recorded as failed.
            Otherwise the backend's retries were spent on a fault of the server or the network, and a
            later run may succeed.
    """

    def __init__(self, message: str, *, cause: str = "server_error", permanent: bool = False) -> None:
        super().__init__(message)
        self.cause = cause
        self.permanent = permanent

    def __reduce__(self) -> tuple[type[RequestError], tuple[str], dict[str, object]]:
        return (type(self), (str(self),), {"cause": self.cause, "permanent": self.permanent})


class ResultsLockedError(PenguinError, RuntimeError):
    """A results folder is being written by another process (it holds the folder's ``.lock``)."""


class DependencyNotInstalled(PenguinError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` command."""


class JudgeBatchError(JudgeError):
    """Some items of a batch could not be judged (after the judge's retries).

    Attributes:
        results: One entry per requested item: its ``JudgeScore``, or ``None`` where it failed, so a
            caller (a cache, a table build) keeps what did succeed.
        failures: One record per failed item (``penguin_gym.judges.llm.JudgeFailure``): which item, why,
            and the judge's raw replies.
    """

    def __init__(self, message: str, results: list[object], failures: list[object]) -> None:
        super().__init__(message)
        self.results = results
        self.failures = failures

    def __reduce__(self) -> tuple[type[JudgeBatchError], tuple[str, list[object], list[object]]]:
        return (type(self), (str(self), self.results, self.failures))


class UnderdeterminedFitWarning(UserWarning):
    """``refit`` had too few judgments or scenarios for the parameters it fitted: its in-sample R^2 says
    little about the surrogate, and the held-out numbers are noisy or missing (see ``FitReport.warnings``)."""
