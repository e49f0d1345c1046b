"""Where the binding finds libuploadfs: $UPLOADFS_LIBRARY as a file or a directory (a build
tree); a wrong one is an OSError that says what to set, and `import uploadfs` itself never
needs the library. Each case runs in a fresh interpreter (the library loads once)."""

import os
import subprocess
import sys

from conftest import BUILD, TOP

CODE = """
import uploadfs
try:
    print(uploadfs.library_version())
except OSError as e:
    print("OSError:", e)
"""


def run(library):
    env = dict(os.environ, UPLOADFS_LIBRARY=library, PYTHONPATH=str(TOP / "python"),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_library_from_a_file_or_a_build_directory():
    assert run(str(BUILD / "core" / "libuploadfs.so.0")) == "0.1.0"
    assert run(str(BUILD)) == "0.1.0"
    assert run(str(BUILD / "core")) == "0.1.0"


def test_a_wrong_library_path_says_what_to_set(tmp_path):
    out = run(str(tmp_path / "libuploadfs.so.0"))
    assert out.startswith("OSError: uploadfs: cannot load libuploadfs")
    assert "UPLOADFS_LIBRARY" in out and str(tmp_path) in out
