"""Secrets by reference, for AWS Lambda: `NAME_SSM=/ai-queue/prod/upstash-token` in the
environment means that NAME's value is that AWS SSM Parameter Store parameter (decrypted).

`get_settings()` passes the environment through `resolve_secret_references` once per warm
instance (its result is cached), so the template never holds a secret in plain text. All
references are read in one `GetParameters` call (ten names per call). A variable that is set
itself wins over its reference; with no references nothing is imported and nothing is fetched,
which is the case on Vercel and in the dev stack. boto3 ships with the Lambda runtime and is
imported on first use only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.errors import RetryLater, ServerMisconfigured

REFERENCE_SUFFIX = "_SSM"
SSM_CONNECT_TIMEOUT_S = 1.0
SSM_READ_TIMEOUT_S = 2.0
SSM_MAX_ATTEMPTS = 2
NAMES_PER_CALL = 10
_CONFIGURATION_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "ParameterNotFound",
        "ValidationException",
        "UnrecognizedClientException",
    }
)

Fetch = Callable[[Sequence[str]], Mapping[str, str]]


class SecretsUnavailable(
    RetryLater,
    status=503,
    code="secrets_unavailable",
    title="Configuration store temporarily unavailable",
):
    """Parameter Store did not answer (throttled, unreachable, too slow): worth a retry."""


def secret_references(environ: Mapping[str, str]) -> dict[str, str]:
    """`{variable: parameter name}` for every `NAME_SSM` whose NAME is not set itself."""
    references: dict[str, str] = {}
    for name, parameter in environ.items():
        variable = name.removesuffix(REFERENCE_SUFFIX)
        if variable != name and parameter and not environ.get(variable):
            references[variable] = parameter
    return references


def resolve_secret_references(
    environ: Mapping[str, str], fetch: Fetch | None = None
) -> Mapping[str, str]:
    """The environment with every reference replaced by its parameter's value."""
    references = secret_references(environ)
    if not references:
        return environ
    values = (fetch or fetch_parameters)(sorted(set(references.values())))
    return {**environ, **{name: values[parameter] for name, parameter in references.items()}}


def fetch_parameters(names: Sequence[str]) -> dict[str, str]:
    """Decrypted values of SSM parameters by name; a missing or forbidden one is a 500."""
    client = _ssm_client()
    values: dict[str, str] = {}
    for start in range(0, len(names), NAMES_PER_CALL):
        values.update(_get_parameters(client, names[start : start + NAMES_PER_CALL]))
    return values


def _get_parameters(client: Any, names: Sequence[str]) -> dict[str, str]:
    errors = importlib.import_module("botocore.exceptions")
    try:
        reply = client.get_parameters(Names=list(names), WithDecryption=True)
    except errors.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "unknown"))
        if code in _CONFIGURATION_ERRORS:
            raise ServerMisconfigured(
                f"cannot read SSM parameters {', '.join(names)}: {code}"
            ) from None
        raise SecretsUnavailable(f"SSM Parameter Store refused the read: {code}") from None
    except errors.BotoCoreError as error:
        raise SecretsUnavailable(f"SSM Parameter Store did not answer: {error}") from None
    if reply.get("InvalidParameters"):
        missing = ", ".join(reply["InvalidParameters"])
        raise ServerMisconfigured(f"SSM parameters not found: {missing}")
    return {
        f"{parameter['Name']}{parameter.get('Selector', '')}": str(parameter["Value"])
        for parameter in reply["Parameters"]
    }


def _ssm_client() -> Any:
    boto3 = importlib.import_module("boto3")
    config = importlib.import_module("botocore.config").Config(
        connect_timeout=SSM_CONNECT_TIMEOUT_S,
        read_timeout=SSM_READ_TIMEOUT_S,
        retries={"total_max_attempts": SSM_MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client("ssm", config=config)
