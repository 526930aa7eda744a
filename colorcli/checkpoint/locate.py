"""Where a model file lies: a local path, ``hf://owner/repo[@revision]/file`` on the Hugging Face
Hub (downloaded into its cache, failing fast without a network) or the shipped default
(``colorcli.weights``, torch-free, re-exported here)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import cast

from colorcli.errors import BadWeights, UsageError
from colorcli.weights import WEIGHTS_ENV, default_model_path

_HF_SPEC = re.compile(r"^hf://([^/@\s]+)/([^/@\s]+)(?:@([^/\s]+))?/(.+)$")


def parse_hf_spec(spec: str) -> tuple[str, str, str | None]:
    """``hf://owner/repo[@revision]/path/in/repo`` -> (repo_id, filename, revision or None)."""
    m = _HF_SPEC.match(spec)
    if m is None:
        raise UsageError(
            f"bad Hugging Face model spec {spec!r} (expected hf://owner/repo[@revision]/file)"
        )
    owner, name, revision, filename = m.groups()
    return f"{owner}/{name}", filename, revision


HF_PROBE_TIMEOUT_S = 3.0
"""How long ``hf_download`` waits for a TCP connection to the Hub before calling it offline
(huggingface_hub itself retries for about 25 s)."""


def _hub_unreachable(endpoint: str, timeout: float = HF_PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``endpoint`` (the Hub's URL) opens within ``timeout``
    seconds, else the reason. Skipped (None) when a proxy is configured: only the proxy knows."""
    import socket
    from urllib.parse import urlsplit

    proxies = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
    if any(os.environ.get(v) or os.environ.get(v.lower()) for v in proxies):
        return None
    url = urlsplit(endpoint)
    if not url.hostname:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def hf_download(spec: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Fetch the file named by an ``hf://`` spec into the Hugging Face cache; returns its path.

    Honours ``HF_HUB_OFFLINE`` / ``HF_HUB_CACHE`` like every huggingface_hub download. Without
    a network (the Hub unreachable within ``HF_PROBE_TIMEOUT_S``) it fails at once, or returns
    the cached copy when there is one, instead of huggingface_hub's 25 s of retries.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    repo_id, filename, revision = parse_hf_spec(spec)
    cache = None if cache_dir is None else os.fspath(cache_dir)
    offline = constants.HF_HUB_OFFLINE
    reason = None if offline else _hub_unreachable(constants.ENDPOINT)
    if reason is not None:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            return Path(cached)
        raise BadWeights(
            f"{spec}: cannot reach {constants.ENDPOINT} ({reason}) and the file is not in the "
            "Hugging Face cache: connect once to download it (then HF_HUB_OFFLINE=1 uses the "
            "cached copy without the network)"
        )
    try:
        local = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache,
        )
    except Exception as exc:  # network, auth, missing repo/file, offline without a cached copy
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadWeights(f"{spec}: cannot download ({type(exc).__name__}: {reason})") from exc
    return Path(cast(str, local))


def resolve_model_spec(
    spec: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Turn a model spec (path, ``hf://...``, None or ``"default"``) into a local file path."""
    if spec is None or (isinstance(spec, str) and spec == "default"):
        path = default_model_path()
        if not path.is_file():
            raise BadWeights(
                f"no default model is shipped yet ({path} does not exist): pass a model file "
                f"with --model PATH or --model hf://owner/repo/file, or set {WEIGHTS_ENV}"
            )
        return path
    if isinstance(spec, str) and spec.startswith("hf://"):
        return hf_download(spec, cache_dir)
    return Path(spec).expanduser()
