"""A failed ``from_pretrained`` turned into a ConfigError that says what to do.

transformers re-raises the Hub's typed errors (``RepositoryNotFoundError``, ``GatedRepoError``...) as
``OSError`` ``from`` the original, so the cause is looked for along the exception chain first; message
text is matched only for failures that have no type of their own (remote code, unknown architectures).
"""

from __future__ import annotations

from trainer_core.assets import BUILTIN_MODELS
from trainer_core.errors import ConfigError, caused_by


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_error(name: str, exc: Exception, field: str, what: str) -> ConfigError | None:
    """The message for a Hub failure, from the typed ``huggingface_hub`` error under ``exc``, if any."""
    from huggingface_hub import errors as hub
    from huggingface_hub.utils import httpx  # the HTTP client the Hub uses, as transformers imports it

    if caused_by(exc, hub.GatedRepoError):  # before RepositoryNotFoundError, its base class
        return ConfigError(
            field,
            f"{what} {name!r} is gated on the Hugging Face Hub; ask for access on "
            f"https://huggingface.co/{name} and log in (hf auth login), or pick another checkpoint",
        )
    if caused_by(exc, hub.RepositoryNotFoundError):
        return ConfigError(field, _NOT_ON_HUB.format(what=what, name=name))
    if caused_by(exc, hub.RevisionNotFoundError):
        return ConfigError(
            "revision",
            f"{what} {name!r} has no such revision on the Hugging Face Hub; use a branch, tag or commit id "
            "that exists (e.g. 'main')",
        )
    if caused_by(exc, hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled, httpx.TransportError):
        return ConfigError(field, _not_cached(name, what))
    if caused_by(exc, hub.HFValidationError):
        return ConfigError(
            field,
            f"{name!r} is neither a local folder nor a Hugging Face Hub id ('org/name', letters, digits, "
            "'-', '_' and '.'); check the spelling or the path",
        )
    return None


_NOT_ON_HUB = (
    "no {what} {name!r} on the Hugging Face Hub; check the spelling (e.g. 'bert-base-uncased'), "
    "or log in (hf auth login) if it is private or gated"
)


def _not_cached(name: str, what: str) -> str:
    mode = "offline mode is on (HF_HUB_OFFLINE)" if hub_offline() else "the Hub cannot be reached"
    return (
        f"{what} {name!r} is not in the local Hugging Face cache and {mode}; choose a built-in "
        f"({', '.join(BUILTIN_MODELS)}) or a local save_pretrained folder, or download it into the "
        "cache on a machine with internet access"
    )


def checkpoint_load_error(name: str, exc: Exception, field: str, what: str = "checkpoint") -> ConfigError:
    """Translate a transformers/huggingface_hub loading failure into a message a user can act on.

    The Hub's typed errors first; the message text only where no typed error says what happened
    (transformers raises plain ``OSError``/``ValueError`` for remote code, unknown architectures and
    missing weights).
    """
    typed = _hub_error(name, exc, field, what)
    if typed is not None:
        return typed
    text = str(exc)
    lowered = text.lower()
    if "trust_remote_code" in text:
        return ConfigError(
            "trust_remote_code",
            f"{what} {name!r} runs its own modelling code; turn on trust_remote_code only if you trust "
            "that repository, or pick another checkpoint",
        )
    if "couldn't connect" in lowered or "offline" in lowered or "connection" in lowered:
        return ConfigError(field, _not_cached(name, what))
    if "not a valid model identifier" in lowered or "repository not found" in lowered or "404" in text:
        return ConfigError(field, _NOT_ON_HUB.format(what=what, name=name))
    if "unrecognized configuration class" in lowered:
        return ConfigError(
            field,
            f"{what} {name!r} cannot classify text: transformers has no sequence-classification model for its "
            "architecture; choose an encoder checkpoint such as BERT, RoBERTa, DeBERTa or DistilBERT",
        )
    if "does not recognize this architecture" in lowered or "should have a `model_type`" in lowered:
        return ConfigError(
            field,
            f"{what} {name!r} has a model type this version of transformers does not know; check its "
            "config.json or upgrade transformers",
        )
    if "no file named" in lowered or "does not appear to have a file named" in lowered:
        return ConfigError(
            field,
            f"{what} {name!r} has a config but no weights (model.safetensors or pytorch_model.bin); point "
            "to a complete save_pretrained folder",
        )
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ConfigError(field, f"could not load {what} {name!r}: {first_line}")
