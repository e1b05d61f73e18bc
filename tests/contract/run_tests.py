"""Runs the contract tests (stdlib unittest + the pinned jsonschema and duckdb) and closes with

    contract: N records validated (identity a, finding b, change c, manifest d, latest e, scan-status f, suppressions g), M failures
    contract: T passed, F failed, S skipped

M counts the records that failed their schema plus every other failed check. Owns nothing else:
scripts/validate-contract.sh sets up the venv and the samples and calls this.

    python tests/contract/run_tests.py [-q] [SAMPLES_DIR]     (or MI_ASSESS_CONTRACT_SAMPLES=DIR)
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS_TEST = "test_records.RecordValidation.test_every_record_matches_its_schema"


def main(argv: list[str]) -> int:
    verbosity = 1 if "-q" in argv else 2
    dirs = [a for a in argv if not a.startswith("-")]
    if dirs:
        os.environ["MI_ASSESS_CONTRACT_SAMPLES"] = str(Path(dirs[0]).resolve())
    sys.path.insert(0, str(HERE))
    import contract_common as cc  # after the environment is set

    samples = cc.load_samples()
    print(f"contract samples: {samples.root}")
    for kind in cc.KINDS:
        print(f"  {kind:13} {len(samples.files[kind]):4} files")
    for path in samples.unclassified:
        print(f"  unclassified (not validated): {path.relative_to(samples.root)}")

    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py", top_level_dir=str(HERE))
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout, buffer=False).run(suite)
    failed_ids = [t.id() for t, _ in result.failures + result.errors]
    failed = len(failed_ids) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    for test, reason in result.skipped:
        print(f"skipped: {test.id()}: {reason}")
    # The records test fails once for any number of invalid records; count the records instead.
    other_failures = failed - (1 if RECORDS_TEST in failed_ids and cc.validation_report().invalid_total else 0)
    print(cc.summary_line(extra_failures=other_failures))
    print(f"contract: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
