"""Where each API path lands in the built bundles, read from what the platforms will read:
the CloudFormation routes that osls generated (route -> integration -> function -> handler)
and Vercel's `.vercel/output/config.json` routes (path -> `.func` directory, whose
`.vc-config.json` names the handler). The smoke test invokes exactly those entry points.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNTIME = "python3.12"


@dataclass(frozen=True)
class EntryPoint:
    """One deployed function: import `target` ("module:attribute") with `roots` on sys.path,
    from `directory`, with the platform's `environment`."""

    name: str
    directory: Path
    roots: tuple[Path, ...]
    target: str
    environment: dict[str, str] = field(default_factory=dict)


class BundleError(RuntimeError):
    """The bundle does not route a path, or routes it to something unusable."""


def lambda_entry_points(template_path: Path, task_root: Path) -> dict[str, EntryPoint]:
    """`{"POST /api/enqueue": EntryPoint, ...}` from the HTTP API routes of the template."""
    resources: dict[str, Any] = json.loads(template_path.read_text())["Resources"]
    entry_points: dict[str, EntryPoint] = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        integration_id = resource["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = resources[integration_id]["Properties"]
        function_id = integration["IntegrationUri"]["Fn::GetAtt"][0]
        function = resources[function_id]["Properties"]
        if function["Runtime"] != RUNTIME:
            raise BundleError(f"{function_id} runs {function['Runtime']}, not {RUNTIME}")
        module, _, attribute = function["Handler"].rpartition(".")
        entry_points[resource["Properties"]["RouteKey"]] = EntryPoint(
            name=function_id.removesuffix("LambdaFunction"),
            directory=task_root,
            roots=(task_root,),
            target=f"{module.replace('/', '.')}:{attribute}",
            environment=dict(function.get("Environment", {}).get("Variables", {})),
        )
    return entry_points


def vercel_entry_point(output: Path, path: str) -> EntryPoint:
    """The function that Vercel's routes send `path` to."""
    routes: list[dict[str, str]] = json.loads((output / "config.json").read_text())["routes"]
    for route in routes:
        if "dest" in route and re.fullmatch(route["src"], path):
            function_dir = output / "functions" / f"{route['dest'].strip('/')}.func"
            return _vercel_function(function_dir)
    raise BundleError(f"no Vercel route for {path}")


def _vercel_function(function_dir: Path) -> EntryPoint:
    config: dict[str, Any] = json.loads((function_dir / ".vc-config.json").read_text())
    if config["runtime"] != RUNTIME:
        raise BundleError(f"{function_dir.name} runs {config['runtime']}, not {RUNTIME}")
    environment: dict[str, str] = config.get("environment", {})
    module, _, attribute = config["handler"].rpartition(".")
    extra_roots = [function_dir / part for part in environment.get("PYTHONPATH", "").split(":")]
    return EntryPoint(
        name=function_dir.name.removesuffix(".py.func"),
        directory=function_dir,
        roots=(function_dir, *(root for root in extra_roots if root != function_dir)),
        target=f"{module}:{attribute}",
        environment=environment,
    )
