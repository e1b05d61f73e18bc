"""Contract tests on attack-graph.json, the privilege graph in BloodHound CE's OpenGraph format.

Owns: every attack-graph.json in the samples loads and validates with bhopengraph (the OpenGraph
library on PyPI: node and edge shapes, at most three kinds, flat properties, no edge to a missing node,
no isolated node); the edges say what the identity records beside them say (the MIACanExecuteAs
edges into an identity come from the actors its record lists, and its node carries the actor count); and the demo's three attack paths are in the graph.
"""

from __future__ import annotations

import json
import unittest

from bhopengraph import OpenGraph

import contract_common as cc


class OpenGraphExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.samples = cc.load_samples()

    def test_every_attack_graph_validates(self):
        graphs = self.samples.attack_graphs
        self.assertTrue(graphs, "no attack-graph.json among the samples")
        for path in graphs:
            graph = OpenGraph()
            self.assertTrue(graph.import_from_file(str(path)), f"{path}: bhopengraph cannot load it")
            valid, errors = graph.validate_graph()
            self.assertTrue(valid, f"{path}: {errors[:10]}")
            doc = json.loads(path.read_text(encoding="utf-8"))
            self.assertEqual(doc["metadata"]["source_kind"], "MIAssess")
            # Every edge loaded: bhopengraph drops malformed ones silently.
            self.assertEqual(graph.get_edge_count(), len(doc["graph"]["edges"]), path)
            self.assertEqual(graph.get_node_count(), len(doc["graph"]["nodes"]), path)

    def test_actor_counts_match_the_identity_records(self):
        checked = 0
        for path in self.samples.attack_graphs:
            identities = path.parent / "identities.ndjson"
            if not identities.exists():
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            into: dict[str, set[str]] = {}
            for edge in doc["graph"]["edges"]:
                if edge["kind"] == "MIACanExecuteAs":
                    into.setdefault(edge["end"]["value"], set()).add(edge["start"]["value"])
            nodes = {n["id"]: n for n in doc["graph"]["nodes"]}
            for line in cc.ndjson_lines(identities):
                record = json.loads(line)
                actors = record.get("actors", {})
                listed = {a["principal"]["id"].lower() for a in actors.get("first", [])}
                # The graph carries the actors the record lists (at most 20), and the count.
                self.assertEqual(into.get(record["id"].lower(), set()), listed, record["displayName"])
                node = nodes.get(record["id"].lower())
                if node is not None:
                    self.assertEqual(node["properties"].get("actorcount"), actors.get("count", 0))
                checked += 1
        self.assertTrue(checked, "no identities.ndjson beside an attack graph")

    def test_the_demo_paths_are_in_the_graph(self):
        demo = [
            doc
            for doc in (json.loads(p.read_text(encoding="utf-8")) for p in self.samples.attack_graphs)
            if any(n["properties"].get("name") == "deploy-diagnostics-to-la" for n in doc["graph"]["nodes"])
        ]
        self.assertTrue(demo, "no demo run among the samples")
        doc = demo[0]
        names = {n["id"]: n["properties"].get("name") for n in doc["graph"]["nodes"]}
        executes = {
            (names.get(e["start"]["value"]), names.get(e["end"]["value"]))
            for e in doc["graph"]["edges"]
            if e["kind"] == "MIACanExecuteAs"
        }
        self.assertIn(("deploy-diagnostics-to-la", "vm-build-agent-01"), executes)
        self.assertIn(("id-github-deploy", "func-mi-assess"), executes)
        self.assertIn(("sg-platform-operators", "id-aks-prod-kubelet"), executes)


if __name__ == "__main__":
    unittest.main()
