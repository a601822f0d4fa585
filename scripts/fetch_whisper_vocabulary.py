"""Rebuild ``assets/whisper/multilingual.tiktoken`` (and its LICENSE) from the
``openai-whisper`` source distribution on PyPI (MIT), and check its SHA-256.

Run with ``python scripts/fetch_whisper_vocabulary.py``. It runs
``pip download --no-deps --no-binary :all: openai-whisper==VERSION`` into a
temporary folder and copies the two files out; the server itself never downloads.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from avatar_agent.speech.asr import VOCABULARY, VOCABULARY_SHA256

VERSION = "20250625"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", f"openai-whisper=={VERSION}", "-d", tmp], check=True)
        (sdist,) = Path(tmp).glob("openai_whisper-*.tar.gz")
        root = f"openai_whisper-{VERSION}"
        with tarfile.open(sdist) as tar:
            for member, target in ((f"{root}/whisper/assets/multilingual.tiktoken", VOCABULARY),
                                   (f"{root}/LICENSE", VOCABULARY.parent / "LICENSE")):
                f = tar.extractfile(member)
                assert f is not None, member
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.read())
    digest = hashlib.sha256(VOCABULARY.read_bytes()).hexdigest()
    if digest != VOCABULARY_SHA256:
        sys.exit(f"{VOCABULARY}: SHA-256 {digest} is not the expected {VOCABULARY_SHA256}")
    print(f"wrote {VOCABULARY} (SHA-256 checked) and its LICENSE")


if __name__ == "__main__":
    main()
