"""Write the missing Unity .meta files of this package (Unity ignores assets without one in git installs).

GUIDs are derived from the package name and the asset's path, so running this twice, or on two machines, gives the
same GUID. Existing .meta files are never changed (renaming an asset? move its .meta with it to keep references).
Usage: python unity_plugin/Tools~/add_metas.py
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
PACKAGE_NAME = "com.worldbridge.client"

IMPORTERS = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n  executionOrder: 0\n"
           "  icon: {instanceID: 0}\n",
    ".asmdef": "AssemblyDefinitionImporter:\n  externalObjects: {}\n",
    ".md": "TextScriptImporter:\n  externalObjects: {}\n",
    ".json": "TextScriptImporter:\n  externalObjects: {}\n",
    ".txt": "TextScriptImporter:\n  externalObjects: {}\n",
}
TAIL = "  userData: \n  assetBundleName: \n  assetBundleVariant: \n"


def needs_meta(rel: Path) -> bool:
    """Unity imports everything but hidden files and folders ending in '~'; Samples~ gets metas for stable GUIDs."""
    parts = rel.parts
    if any(p.startswith(".") for p in parts) or rel.suffix == ".meta" or rel.name == "Samples~":
        return False
    return not any(p.endswith("~") for p in parts) or parts[0] == "Samples~"


def guid(rel: Path) -> str:
    return hashlib.md5(f"{PACKAGE_NAME}/{rel.as_posix()}".encode()).hexdigest()


def meta_text(path: Path, rel: Path) -> str:
    head = f"fileFormatVersion: 2\nguid: {guid(rel)}\n"
    if path.is_dir():
        return head + "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n" + TAIL
    if rel.as_posix() == "package.json":
        return head + "PackageManifestImporter:\n  externalObjects: {}\n" + TAIL
    return head + IMPORTERS.get(path.suffix, "DefaultImporter:\n  externalObjects: {}\n") + TAIL


def assets(root: Path = PACKAGE) -> list[Path]:
    """Every file and folder under the package that Unity needs a .meta for."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in dirnames + filenames:
            rel = (Path(dirpath) / name).relative_to(root)
            if needs_meta(rel):
                found.append(rel)
    return sorted(found)


def main() -> None:
    written = 0
    for rel in assets():
        meta = PACKAGE / (rel.as_posix() + ".meta")
        if not meta.exists():
            tmp = meta.with_name(meta.name + ".tmp")
            tmp.write_text(meta_text(PACKAGE / rel, rel), encoding="utf-8")
            os.replace(tmp, meta)
            written += 1
            print(f"wrote {meta.relative_to(PACKAGE.parent)}")
    print(f"{written} .meta files written")


if __name__ == "__main__":
    main()
