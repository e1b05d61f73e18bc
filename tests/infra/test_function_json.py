"""functions/*/function.json and host.json: binding types, NCRONTAB schedules, names the code dispatches on."""

from __future__ import annotations

import json
import re
import unittest

import infra_common as ic

# Binding types this app may use, with the directions each allows.
KNOWN_BINDINGS = {
    "httpTrigger": {"in"},
    "http": {"out"},
    "timerTrigger": {"in"},
    "queueTrigger": {"in"},
    "queue": {"out"},
    "blob": {"in", "out"},
}
TRIGGERS = {"httpTrigger", "timerTrigger", "queueTrigger"}
# The public API documented in docs/architecture.md (The Functions app).
EXPECTED_ROUTES = {"scans": "scans/{runId?}", "identity": "identities/{objectId}"}


class Ncrontab(unittest.TestCase):
    def test_validator(self):
        for ok in ["0 0 2 * * *", "*/30 * * * * *", "0 15 1-5 * JAN-MAR MON-FRI", "0 0,30 8-18/2 1 * 0"]:
            self.assertEqual(ic.ncrontab_errors(ok), [], ok)
        for bad in ["0 2 * * *", "0 0 2 * * * *", "0 0 24 * * *", "60 0 2 * * *", "0 0 2 0 * *",
                    "0 0 2 * 13 *", "0 0 2 * * 7", "0 0 2 * * FOO", "0 */0 * * * *", "0 5-1 * * * *", "00:05:00"]:
            self.assertNotEqual(ic.ncrontab_errors(bad), [], bad)


class FunctionJson(unittest.TestCase):
    def setUp(self):
        self.functions = ic.function_jsons()

    def test_folders_are_the_functions_the_code_dispatches_on(self):
        self.assertEqual(set(self.functions), ic.EXPECTED_FUNCTIONS)
        stray = sorted(p.name for p in ic.FUNCTIONS.iterdir() if p.name not in ic.EXPECTED_FUNCTIONS)
        self.assertEqual(stray, [], "unexpected entries under functions/")

    def test_code_dispatches_on_every_function(self):
        sources = ic.rust_sources()
        if not sources:
            ic.cannot_check(self, "src/ has no .rs files yet")
        text = "\n".join(ic.read(f) for f in sources)
        missing = [n for n in sorted(ic.EXPECTED_FUNCTIONS) if not re.search(rf'"/?{re.escape(n)}"', text)]
        self.assertEqual(missing, [], "no string literal \"<name>\" or \"/<name>\" in src/ for these functions "
                         "(the host POSTs each invocation to /<function folder name>)")

    def test_bindings(self):
        for fn, doc in self.functions.items():
            with self.subTest(function=fn):
                bindings = doc.get("bindings")
                self.assertIsInstance(bindings, list, "bindings must be a list")
                self.assertTrue(bindings)
                names = [b.get("name") for b in bindings]
                self.assertEqual(len(names), len(set(names)), f"duplicate binding names {names}")
                for b in bindings:
                    self.assertIn(b.get("type"), KNOWN_BINDINGS, f"unknown binding type {b.get('type')!r}")
                    self.assertIn(b.get("direction"), KNOWN_BINDINGS[b["type"]], f"{b['type']} direction")
                    self.assertRegex(b.get("name", ""), r"^(\$return|[A-Za-z][A-Za-z0-9_]*)$")
                triggers = [b for b in bindings if b["type"] in TRIGGERS]
                self.assertEqual(len(triggers), 1, "exactly one trigger per function")
                has_http_in = triggers[0]["type"] == "httpTrigger"
                has_http_out = any(b["type"] == "http" for b in bindings)
                self.assertEqual(has_http_in, has_http_out, "an http output goes with an httpTrigger and vice versa")
                if "retry" in doc:
                    # Function-level retry is honoured for timer (not HTTP/queue) triggers.
                    self.assertEqual(triggers[0]["type"], "timerTrigger", "retry policy on a non-timer function")
                    self.assertIn(doc["retry"].get("strategy"), {"fixedDelay", "exponentialBackoff"})

    def test_http_functions_need_a_key(self):
        for fn, doc in self.functions.items():
            for b in doc["bindings"]:
                if b["type"] == "httpTrigger":
                    with self.subTest(function=fn):
                        self.assertIn(b.get("authLevel"), {"function", "admin"}, "HTTP functions must not be anonymous")
                        self.assertTrue(set(b.get("methods", [])) <= {"get", "post"})
                        self.assertEqual(b.get("route"), EXPECTED_ROUTES.get(fn))

    def test_timer_schedules_are_six_field_ncrontab(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        settings = ic.bicep_object_keys(ic.bicep_var_block(main, "miAssessSettings"))
        params = ic.bicep_params(main)
        azd = json.loads(ic.read(ic.INFRA / "main.parameters.json"))["parameters"]
        timers = 0
        for fn, doc in self.functions.items():
            for b in doc["bindings"]:
                if b["type"] != "timerTrigger":
                    continue
                timers += 1
                with self.subTest(function=fn):
                    self.assertFalse(b.get("runOnStartup", False), "runOnStartup fires on every scale-out")
                    schedule = b.get("schedule", "")
                    ref = re.fullmatch(r"%([A-Za-z0-9_]+)%", schedule)
                    if not ref:
                        self.assertEqual(ic.ncrontab_errors(schedule), [])
                        continue
                    setting = ref.group(1)
                    self.assertIn(setting, settings, f"{schedule} is not set in main.bicep")
                    param = settings[setting]
                    self.assertIn(param, params, f"{setting} must come straight from a parameter")
                    default = ic.bicep_string_literal(params[param]["default"])
                    self.assertIsNotNone(default, f"param {param} needs a literal default")
                    self.assertEqual(ic.ncrontab_errors(default), [], f"Bicep default of {setting}")
                    # azd's default (main.parameters.json "${VAR=default}") must be valid too.
                    m = re.fullmatch(r"\$\{[A-Z0-9_]+=(.*)\}", azd.get(param, {}).get("value", ""))
                    if m:
                        self.assertEqual(ic.ncrontab_errors(m.group(1)), [], f"azd default of {setting}")
        self.assertGreaterEqual(timers, 1)

    def test_queue_bindings_match_the_bicep(self):
        main = ic.bicep_code(ic.INFRA / "main.bicep")
        app = ic.bicep_code(ic.INFRA / "modules" / "function-app.bicep")
        queue = ic.bicep_var_string(main, "scanQueueName")
        self.assertTrue(queue, "main.bicep var scanQueueName")
        produced, consumed = set(), set()
        for fn, doc in self.functions.items():
            for b in doc["bindings"]:
                if b["type"] in ("queue", "queueTrigger"):
                    with self.subTest(function=fn, binding=b["name"]):
                        # The host itself writes the poison queue, which scan-worker-poison reads.
                        names = {queue, f"{queue}-poison"} if b["type"] == "queueTrigger" else {queue}
                        self.assertIn(b.get("queueName"), names, "queue name must be one Bicep creates")
                        conn = b.get("connection", "AzureWebJobsStorage")
                        # Identity-based connection: <conn>__credential + service URIs, never a connection string.
                        self.assertIn(f"{conn}__credential", app)
                        self.assertIn(f"{conn}__queueServiceUri", app)
                        (produced if b["type"] == "queue" else consumed).add(b["queueName"])
        self.assertEqual(produced, consumed - {f"{queue}-poison"}, "every queue written is read by a queueTrigger")
        self.assertIn(f"{queue}-poison", consumed, "scan-worker-poison reads the poison queue")
        self.assertRegex(main, r"queueNames:\s*\[scanQueueName,\s*'\$\{scanQueueName\}-poison'\]")


class HostJson(unittest.TestCase):
    def test_custom_handler(self):
        host = json.loads(ic.read(ic.ROOT / "host.json"))
        self.assertEqual(host.get("version"), "2.0")
        desc = host["customHandler"]["description"]
        self.assertEqual(desc["defaultExecutablePath"], "mi-assess")
        self.assertEqual(desc.get("arguments"), ["serve"])
        self.assertTrue(host["extensionBundle"]["version"].startswith("[4."), "Flex needs bundle [4.*, 5.0.0)")
        self.assertEqual(host["extensions"]["http"]["routePrefix"], "api")

    def test_max_dequeue_count_matches_the_worker(self):
        host = json.loads(ic.read(ic.ROOT / "host.json"))
        src = ic.read(ic.SRC / "host" / "functions.rs")
        m = re.search(r"pub const MAX_DEQUEUE_COUNT: u32 = (\d+);", src)
        self.assertTrue(m, "MAX_DEQUEUE_COUNT in src/host/functions.rs")
        self.assertEqual(host["extensions"]["queues"]["maxDequeueCount"], int(m.group(1)),
                         "scan-worker marks the run failed on the host's last delivery")


if __name__ == "__main__":
    unittest.main()
