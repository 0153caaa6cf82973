"""Small files for the tests, written to a temporary directory."""
import os
import tempfile


class TempFiles:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="cangen-train-test-")

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def close(self):
        self.dir.cleanup()
