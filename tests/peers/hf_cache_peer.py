"""Reads Hugging Face caches with huggingface_hub (the real reader) for vouch's tests.

Usage:
  hf_cache_peer.py scan CACHE REPO_ID REVISION FILE...
      -> JSON: what scan_cache_dir() found of the repository (its revisions, each file with
         its blob path and size, and the refs), the cache's warnings, and for each FILE the
         path try_to_load_from_cache() returns with the SHA-256 of what it reads there.
  hf_cache_peer.py local DIR FILE...
      -> JSON: for each FILE, the commit and etag read_download_metadata() returns (null when
         huggingface_hub finds no valid metadata for it).
"""

import hashlib
import json
import pathlib
import sys

from huggingface_hub import scan_cache_dir, try_to_load_from_cache
from huggingface_hub._local_folder import read_download_metadata


def scan(cache, repo_id, revision, files):
    info = scan_cache_dir(cache)
    repos = [r for r in info.repos if r.repo_id == repo_id]
    found = {
        "warnings": [str(w) for w in info.warnings],
        "revisions": [],
        "loaded": {},
    }
    for repo in repos:
        for rev in repo.revisions:
            found["revisions"].append(
                {
                    "commit": rev.commit_hash,
                    "refs": sorted(rev.refs),
                    "files": {
                        str(f.file_path.relative_to(rev.snapshot_path)): {
                            "blob": str(f.blob_path),
                            "size": f.size_on_disk,
                        }
                        for f in rev.files
                    },
                }
            )
    for name in files:
        path = try_to_load_from_cache(repo_id, name, cache_dir=cache, revision=revision)
        if isinstance(path, str):
            digest = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
            found["loaded"][name] = {"path": path, "sha256": digest}
        else:
            found["loaded"][name] = None
    print(json.dumps(found))


def local(directory, files):
    found = {}
    for name in files:
        metadata = read_download_metadata(pathlib.Path(directory), name)
        found[name] = (
            None
            if metadata is None
            else {"commit": metadata.commit_hash, "etag": metadata.etag}
        )
    print(json.dumps(found))


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "scan":
        scan(rest[0], rest[1], rest[2], rest[3:])
    elif command == "local":
        local(rest[0], rest[1:])
    else:
        sys.exit(f"unknown command {command}")
