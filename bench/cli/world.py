"""`bench data`: write the tiny world, or a picture of it."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchutil.errors import BenchError


def data_command(args: argparse.Namespace) -> None:
    # The CLI imports this module to build its parser: the world (and torch) load only here.
    from bench.tiny import world
    from bench.tiny.preview import preview
    from bench.tiny.suite import world_root

    if args.preview:
        if args.out is not None and args.out.suffix.lower() != ".png":
            raise BenchError(f"--out {args.out}: the preview is a PNG picture; give a path ending in .png")
        root = world_root(None, args.seed)
        print(f"wrote {preview(root, args.out or Path('tiny_preview.png'))}")
        return
    if args.out is None:
        raise BenchError("bench data tiny needs --out DIR (or --preview for a picture of the world)")
    manifest = world.write_world(args.out, seed=args.seed)
    print(f"wrote {len(manifest['files'])} files to {args.out} (manifest {world.manifest_digest(manifest)[:12]})")


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="write a suite's generated data (the tiny world)")
    data.add_argument("suite", choices=["tiny"])
    data.add_argument("--out", type=Path, default=None, help="folder for the world, or PNG path with --preview")
    data.add_argument("--preview", action="store_true", help="write a PNG grid of scenes with captions/questions")
    data.add_argument("--seed", type=int, default=0)
