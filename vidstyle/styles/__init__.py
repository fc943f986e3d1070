"""Styles: the catalogue of names, and their resolution to ready networks.

    load_style("scream")                     a built-in painting style
    load_style("preset:3")                   one of the 26 presets
    load_style("my_painting.jpg", strength=0.7, preserve_color=True)
    load_style("scream:0.6,wave:0.4")        a blend within one network family

`list_styles()` lists every name; `style_slug()` names output files; user styles are
managed with `add_user_style` / `remove_user_style`; `preview` draws contact sheets.
"""

from vidstyle.styles.catalogue import StyleInfo
from vidstyle.styles.paintings import style_vector_for_image
from vidstyle.styles.resolve import list_styles, load_style
from vidstyle.styles.spec import parse_spec, style_slug
from vidstyle.styles.user import add_user_style, remove_user_style, user_styles_dir

__all__ = [
    "StyleInfo",
    "add_user_style",
    "list_styles",
    "load_style",
    "parse_spec",
    "remove_user_style",
    "style_slug",
    "style_vector_for_image",
    "user_styles_dir",
]
