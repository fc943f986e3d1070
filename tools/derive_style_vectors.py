"""Derive the built-in painting styles' 100-d style vectors and store them in the package.

    python tools/derive_style_vectors.py [--paintings samples/paintings]

Runs vidstyle's port of the arbitrary-style predictor (Ghiasi et al. 2017) on each
painting listed in PAINTINGS, exactly as `--style painting.jpg` would at run time
(centre square, 256x256), and writes vidstyle/weights/style_vectors.safetensors (float32,
one 1 x 100 tensor per style name). The paintings themselves are never copied into the
repository. Paste the printed sha256 into vidstyle/styles/catalogue.toml.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidstyle.styles.paintings import (  # noqa: E402
    load_predictor,
    predict_style_vector,
    read_style_image,
)

OUT = Path(__file__).resolve().parent.parent / "vidstyle" / "weights" / "style_vectors.safetensors"
# style name -> file in the paintings folder (see its SOURCES.md for attribution).
PAINTINGS = {
    "scream": "scream.png",
    "wave": "wave.png",
    "wreck": "wreck.png",
    "udnie": "udnie.png",
    "starry_night": "starry_night.jpg",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paintings", type=Path,
                        default=Path(__file__).resolve().parent.parent / "samples" / "paintings")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    predictor = load_predictor()
    vectors, sources = {}, {}
    for name, file_name in PAINTINGS.items():
        path = args.paintings / file_name
        vectors[name] = predict_style_vector(read_style_image(path), predictor).contiguous()
        sources[name] = f"{file_name} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        print(f"{name}: |v| = {vectors[name].norm():.2f} from {path}")
    save_file(vectors, str(args.out), metadata=sources)
    args.out.chmod(0o644)
    print(f"{args.out.name}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
