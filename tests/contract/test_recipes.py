"""Contract tests of the ingestion recipes in docs/ingestion.md against real mi-assess output.

Owns: the Azure Data Explorer tables and JSON mappings (every mapped column exists in its table, every
table column is mapped, every $.path exists in the produced records), the Log Analytics DCR (streams,
the columns its transformKql reads are declared, its output is exactly the custom table's columns,
the declared stream fields exist in the records or come from the manifest), and the DuckDB one-liners
(run verbatim with the pinned duckdb; their row counts equal the NDJSON line counts).
Blocks are found by the HTML comment markers in front of them (<!-- adx-mapping: ... --> etc.).
"""

from __future__ import annotations

import json
import re
import unittest

import duckdb

import contract_common as cc

ADX_TYPES = {"bool", "boolean", "datetime", "date", "decimal", "dynamic", "guid", "uuid", "uniqueid",
             "int", "long", "real", "double", "string", "timespan", "time"}
ADX_TRANSFORMS = {"SourceLocation", "SourceLineNumber"}
DCR_TYPES = {"string", "int", "long", "real", "boolean", "dynamic", "datetime"}
LA_TYPES = {"string", "int", "long", "real", "boolean", "datetime", "guid", "dynamic"}
KQL_WORDS = {"source", "extend", "project", "away", "rename", "where", "and", "or", "not", "in", "has",
             "contains", "between", "true", "false", "null", "by", "on", "asc", "desc", "let", "dynamic",
             "datetime", "string", "int", "long", "real", "bool", "guid", "timespan"}


def adx_tables() -> dict[str, dict[str, str]]:
    tables = {}
    for args, code in cc.marked_blocks("adx-table"):
        m = re.match(r"\s*\.create\s+table\s+(\w+)\s*\((.*?)\)\s*(?:with\s*\(.*\))?\s*$", code, re.S)
        assert m, f"adx-table {args}: not a '.create table T (...)' command"
        assert m[1] == args.strip(), f"adx-table marker {args!r} precedes table {m[1]!r}"
        columns = {}
        for part in m[2].split(","):
            name, _, ctype = part.partition(":")
            columns[name.strip()] = ctype.strip()
        tables[m[1]] = columns
    return tables


def adx_mappings() -> list[tuple[str, str, str, list[dict]]]:
    """(table, record kind, mapping name, entries) of every marked mapping."""
    out = []
    for args, code in cc.marked_blocks("adx-mapping"):
        table, kind = args.split()
        lines = code.strip().splitlines()
        head = re.match(r'\.create(?:-or-alter)?\s+table\s+(\w+)\s+ingestion\s+json\s+mapping\s+"(\w+)"\s*$', lines[0].strip())
        assert head, f"adx-mapping {table}: first line is not '.create-or-alter table T ingestion json mapping \"Name\"'"
        assert head[1] == table, f"adx-mapping marker {table!r} precedes a mapping of {head[1]!r}"
        body = ""
        for line in lines[1:]:
            line = line.strip()
            assert len(line) >= 2 and line[0] == "'" and line[-1] == "'", f"{table} mapping: not a '...' string literal: {line}"
            body += line[1:-1]
        out.append((table, kind, head[2], json.loads(body)))
    return out


def _entry(entry: dict) -> tuple[str, dict]:
    column = entry.get("column", entry.get("Column"))
    props = entry.get("Properties", entry.get("properties", {}))
    return column, props


def dcr() -> tuple[str, dict]:
    blocks = cc.marked_blocks("dcr")
    assert len(blocks) == 1, f"expected one marked DCR, found {len(blocks)}"
    table, code = blocks[0]
    return table.strip(), json.loads(code)


def la_table_columns(table: str) -> dict[str, str]:
    blocks = [code for args, code in cc.marked_blocks("la-table") if args.strip() == table]
    assert len(blocks) == 1, f"expected one marked 'la-table: {table}' block"
    assert f"--name {table}" in blocks[0], f"the la-table block does not create {table}"
    columns_part = blocks[0].split("--columns", 1)[1]
    return dict(re.findall(r"(?<![\w-])([A-Za-z_]\w*)=([A-Za-z]+)\b", columns_part))


def kql_strip_strings(kql: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', kql)


def kql_assigned(kql: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*=(?!=)", kql_strip_strings(kql)))


def kql_input_columns(kql: str) -> set[str]:
    """Identifiers the transformation reads from `source`: not functions, keywords, properties of a
    dynamic value (after a dot) or columns the transformation itself creates."""
    text = kql_strip_strings(kql)
    refs = set()
    for m in re.finditer(r"(?<![\w.-])([A-Za-z_]\w*)", text):
        name, after = m[1], text[m.end():]
        if name in KQL_WORDS or re.match(r"\s*\(", after):
            continue
        refs.add(name)
    return refs - kql_assigned(kql)


def kql_output_columns(kql: str) -> list[str]:
    """Columns of the final `| project` clause."""
    text = kql_strip_strings(kql)
    parts = re.split(r"\|\s*project(?![\w-])", text)
    assert len(parts) > 1, "the transformation has no final project"
    items, depth, cur = [], 0, ""
    for ch in parts[-1]:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for item in items:
        m = re.match(r"\s*([A-Za-z_]\w*)\s*(?:=(?!=)|$)", item)
        assert m, f"cannot read the output column of project item {item.strip()!r}"
        out.append(m[1])
    return out


class AdxRecipe(unittest.TestCase):
    def test_tables_use_adx_types(self):
        tables = adx_tables()
        self.assertEqual(set(tables), {"Findings", "Identities", "Changes", "Runs"})
        for table, columns in tables.items():
            for column, ctype in columns.items():
                self.assertIn(ctype, ADX_TYPES, f"{table}.{column}: {ctype!r} is not an ADX type")

    def test_mappings_cover_their_tables(self):
        tables = adx_tables()
        mappings = adx_mappings()
        self.assertEqual(sorted(t for t, *_ in mappings), sorted(tables), "one mapping per table")
        for table, kind, name, entries in mappings:
            with self.subTest(table=table):
                self.assertIn(kind, cc.KINDS)
                self.assertEqual(name, f"{table}Mapping")
                mapped = []
                for entry in entries:
                    column, props = _entry(entry)
                    mapped.append(column)
                    self.assertIn(column, tables[table], f"{name}: column {column} is not in table {table}")
                    if "Transform" in props and "Path" not in props:
                        self.assertIn(props["Transform"], ADX_TRANSFORMS)
                    else:
                        self.assertRegex(props.get("Path", ""), r"^\$(\.[A-Za-z_]\w*)*$", f"{name}.{column}")
                self.assertEqual(sorted(mapped), sorted(tables[table]), f"{name} must map every column of {table} once")

    def test_every_mapping_path_exists_in_the_produced_records(self):
        samples = cc.load_samples()
        problems, notes, checked = [], [], 0
        for table, kind, name, entries in adx_mappings():
            records = [r.doc for r in samples.records[kind]]
            for entry in entries:
                column, props = _entry(entry)
                path = props.get("Path")
                if not path:
                    continue
                checked += 1
                present = sum(1 for doc in records if cc.json_path_value(doc, path)[0])
                if present:
                    continue
                declared = cc.schema_has_path(kind, path[2:].split(".") if path != "$" else [])
                why = "no record" if not records else f"none of {len(records)} {kind} records"
                if declared:
                    notes.append(f"{name}.{column} {path}: {why} has it; declared in schemas/{cc.SCHEMA_FILES[kind]}")
                else:
                    problems.append(f"{name}.{column} {path}: {why} has it, and the schema does not declare it")
        for note in notes:
            print(f"  note: {note}")
        print(f"  (ADX mappings: {checked} paths checked, {len(notes)} only against the schema)")
        if problems:
            self.fail("ADX mapping paths that exist nowhere:\n  " + "\n  ".join(problems))


class SentinelRecipe(unittest.TestCase):
    def setUp(self):
        self.table, self.rule = dcr()
        self.props = self.rule["properties"]

    def test_dcr_shape(self):
        self.assertEqual(self.rule.get("kind"), "Direct")
        streams = self.props["streamDeclarations"]
        destinations = {d["name"] for d in self.props["destinations"]["logAnalytics"]}
        self.assertTrue(self.table.endswith("_CL"))
        for name, decl in streams.items():
            self.assertTrue(name.startswith("Custom-"), name)
            for col in decl["columns"]:
                self.assertIn(col["type"], DCR_TYPES, f"{name}.{col['name']}")
        for flow in self.props["dataFlows"]:
            for s in flow["streams"]:
                self.assertIn(s, streams)
            self.assertTrue(set(flow["destinations"]) <= destinations)
            self.assertEqual(flow["outputStream"], f"Custom-{self.table}")

    def test_transform_reads_only_declared_columns(self):
        streams = self.props["streamDeclarations"]
        for flow in self.props["dataFlows"]:
            declared = {c["name"] for s in flow["streams"] for c in streams[s]["columns"]}
            used = kql_input_columns(flow["transformKql"])
            self.assertTrue(used, "found no input column in transformKql")
            self.assertFalse(used - declared, f"transformKql reads undeclared columns {sorted(used - declared)}")
            print(f"  (DCR: transformKql reads {len(used)} of {len(declared)} declared columns)")

    def test_transform_output_is_the_custom_table(self):
        columns = la_table_columns(self.table)
        for name, ctype in columns.items():
            self.assertIn(ctype, LA_TYPES, f"{self.table}.{name}")
        self.assertIn("TimeGenerated", columns)
        self.assertNotIn("TenantId", columns, "TenantId is a reserved Log Analytics column")
        for flow in self.props["dataFlows"]:
            out = kql_output_columns(flow["transformKql"])
            self.assertEqual(len(out), len(set(out)), "duplicate output column")
            self.assertEqual(sorted(out), sorted(columns), "transformKql output differs from the table's columns")

    def test_stream_fields_exist_in_the_produced_records(self):
        samples = cc.load_samples()
        enrichment_markers = cc.markers("dcr-enrichment")
        self.assertEqual(len(enrichment_markers), 1)
        enrichment = dict(item.split("=", 1) for item in enrichment_markers[0].split())
        manifests = [r.doc for r in samples.records["manifest"]]
        self.assertTrue(manifests, "no manifest to take the run fields from")
        for field, path in enrichment.items():
            self.assertTrue(all(cc.json_path_value(m, path)[0] for m in manifests), f"manifest {path} (for {field})")
        findings = [r.doc for r in samples.records["finding"]]
        self.assertTrue(findings, "no finding records")
        problems, notes = [], []
        for stream in self.props["streamDeclarations"].values():
            for col in stream["columns"]:
                name = col["name"]
                if name in enrichment:
                    continue
                if any(name in f for f in findings):
                    continue
                if cc.schema_has_path("finding", [name]):
                    notes.append(f"{name}: in no finding record; declared in the schema")
                else:
                    problems.append(f"{name}: neither a finding field nor a manifest field")
        for note in notes:
            print(f"  note: DCR stream field {note}")
        self.assertFalse(problems, "DCR stream fields that exist nowhere: " + "; ".join(problems))


class DuckDbRecipe(unittest.TestCase):
    def test_one_liners_read_the_ndjson(self):
        samples = cc.load_samples()
        blocks = cc.marked_blocks("duckdb")
        self.assertGreaterEqual(len(blocks), 2)
        primaries = set()
        for args, code in blocks:
            primary, expectation = args.split()
            primaries.add(primary)
            m = re.fullmatch(r'\s*duckdb\s+-c\s+"(.*)"\s*', code, re.S)
            self.assertIsNotNone(m, f"duckdb block for {primary} is not a `duckdb -c \"...\"` one-liner")
            sql = m[1]
            referenced = set(re.findall(r"'([\w.-]+\.ndjson)'", sql))
            self.assertIn(primary, referenced)
            kind = {"findings.ndjson": "finding", "identities.ndjson": "identity", "changes.ndjson": "change"}[primary]
            ran = skipped = 0
            for path in samples.files[kind]:
                if path.name != primary or not all((path.parent / f).is_file() for f in referenced):
                    continue
                lines = len(cc.ndjson_lines(path))
                if lines == 0:
                    skipped += 1  # DuckDB cannot infer columns from an empty file
                    continue
                query = sql
                for f in referenced:
                    query = query.replace(f"'{f}'", "'" + str(path.parent / f).replace("'", "''") + "'")
                with self.subTest(query=primary, run=str(path.parent.relative_to(samples.root))):
                    con = duckdb.connect()
                    try:
                        cur = con.execute(query)
                        rows = cur.fetchall()
                        names = [d[0] for d in cur.description]
                    finally:
                        con.close()
                    if expectation == "rows":
                        self.assertEqual(len(rows), lines, f"{primary}: rows {len(rows)} != lines {lines}")
                    else:
                        column = expectation.removeprefix("sum=")
                        total = sum(r[names.index(column)] for r in rows)
                        self.assertEqual(total, lines, f"{primary}: sum({column}) {total} != lines {lines}")
                    ran += 1
            print(f"  (duckdb {duckdb.__version__}: {primary} {expectation}: ran on {ran} files, {skipped} empty skipped)")
            self.assertGreater(ran, 0, f"the {primary} one-liner ran on no sample file")
        self.assertTrue({"findings.ndjson", "identities.ndjson"} <= primaries)


if __name__ == "__main__":
    unittest.main()
