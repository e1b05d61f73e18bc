"""Run the offline infrastructure tests (stdlib unittest) and close with 'infra: N passed, N failed, N skipped'.

    python3 tests/infra/run_tests.py [-q] [test_module ...]
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    verbosity = 1 if "-q" in argv else 2
    names = [a for a in argv if not a.startswith("-")]
    sys.path.insert(0, str(HERE))
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(names) if names else loader.discover(str(HERE), pattern="test_*.py",
                                                                            top_level_dir=str(HERE))
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout, buffer=False).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    for test, reason in result.skipped:
        print(f"skipped: {test.id()}: {reason}")
    print(f"infra: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
