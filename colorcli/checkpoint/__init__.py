"""Every model file colorcli reads or writes: colorizers and critics, local, on the Hugging Face
Hub, the shipped default and the authors' released eccv16.

- ``colorizer_file``: colorizer model files (``save_model``, ``copy_model``, ``read_model_file``,
  ``load_model`` -> ``LoadedModel``, ready for inference);
- ``critic_file``: critic files (``save_critic``, ``read_critic``; scoring is ``colorcli.critic``);
- ``locate``: a spec (path, ``hf://owner/repo[@rev]/file``, ``default``) -> a local path;
- ``released``: the authors' released eccv16 state dict, read as a colorcli model;
- ``common``: the format tags and the checks every file shares.

The container (safetensors written; safetensors and ``torch.load(weights_only=True)`` read) is
``colorcli.modelfile``; where the shipped default lies is ``colorcli.weights`` (torch-free).
Import from here: the names below are the package's API.
"""

from colorcli.checkpoint.colorizer_file import (
    LoadedModel,
    copy_model,
    load_model,
    read_model_file,
    save_model,
)
from colorcli.checkpoint.common import (
    CRITIC_ARCHS,
    CRITIC_FORMAT,
    CRITIC_KIND,
    CRITIC_VERSION,
    DECODE_METHODS,
    DEFAULT_INPUT_SIZE,
    FORMAT,
    RESUME_FORMAT,
    VERSION,
    check_file_header,
    unwrap_model,
)
from colorcli.checkpoint.critic_file import read_critic, save_critic
from colorcli.checkpoint.locate import (
    HF_PROBE_TIMEOUT_S,
    hf_download,
    parse_hf_spec,
    resolve_model_spec,
)
from colorcli.weights import (  # the torch-free home of these; re-exported here
    DEFAULT_WEIGHTS_NAME,
    LEGACY_WEIGHTS_NAME,
    PACKAGED_WEIGHTS_DIR,
    WEIGHTS_ENV,
    default_model_path,
    repo_root,
    weights_dirs,
)

__all__ = [
    "CRITIC_ARCHS",
    "CRITIC_FORMAT",
    "CRITIC_KIND",
    "CRITIC_VERSION",
    "DECODE_METHODS",
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_WEIGHTS_NAME",
    "FORMAT",
    "HF_PROBE_TIMEOUT_S",
    "LEGACY_WEIGHTS_NAME",
    "PACKAGED_WEIGHTS_DIR",
    "RESUME_FORMAT",
    "VERSION",
    "WEIGHTS_ENV",
    "LoadedModel",
    "check_file_header",
    "copy_model",
    "default_model_path",
    "hf_download",
    "load_model",
    "parse_hf_spec",
    "read_critic",
    "read_model_file",
    "repo_root",
    "resolve_model_spec",
    "save_critic",
    "save_model",
    "unwrap_model",
    "weights_dirs",
]
