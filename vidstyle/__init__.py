"""vidstyle: stylize videos with neural style transfer, keeping their sound and timing.

Public API:

* `stylize_video(src, dst=None, settings=None, **overrides)`: one video file.
* `stylize_image(src, dst=None, settings=None, **overrides)`: one picture.
* `Stylizer(settings)`: a loaded engine for many files (`.video(...)`).
* `Settings`, `load_config(path)`: what a job does.
* `probe(path)`: describe a video file.
* `VidstyleError` and subclasses: the errors a user can see.
"""

from vidstyle import _openmp  # noqa: F401  (before torch loads: see the module)
from vidstyle.api import (
    Stylizer,
    VideoResult,
    default_output_path,
    stylize_image,
    stylize_video,
)
from vidstyle.config import GatysSettings, OutputSettings, Settings, load_config
from vidstyle.errors import (
    Cancelled,
    InputError,
    OutputError,
    SettingsError,
    StyleError,
    VidstyleError,
    WeightsError,
)
from vidstyle.files import expand_inputs
from vidstyle.media.probe import MediaInfo, probe
from vidstyle.version import __version__

__all__ = [
    "__version__",
    "Cancelled",
    "GatysSettings",
    "InputError",
    "MediaInfo",
    "OutputError",
    "OutputSettings",
    "Settings",
    "SettingsError",
    "StyleError",
    "Stylizer",
    "VideoResult",
    "VidstyleError",
    "WeightsError",
    "default_output_path",
    "expand_inputs",
    "load_config",
    "probe",
    "stylize_image",
    "stylize_video",
]
