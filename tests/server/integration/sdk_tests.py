"""The OpenAI Node SDK (pinned in tests/server/sdk/package.json, installed from
npm into the build tree) calls tnl-server's structured output: response_format
json_schema and json_object, a regex completion, and a bad schema as the SDK's
BadRequestError (tests/server/sdk/response_format.mjs)."""
import os
import shutil
import subprocess
import sys
import unittest

import server_harness as h

SDK_DIR = os.path.join(h.SOURCE_DIR, "tests", "server", "sdk")


class OpenAINodeSdk(unittest.TestCase):
    def test_response_format_calls(self):
        node, npm = shutil.which("node"), shutil.which("npm")
        self.assertIsNotNone(node, "node is not installed (tools/setup.sh installs nodejs and npm)")
        self.assertIsNotNone(npm, "npm is not installed (tools/setup.sh installs nodejs and npm)")
        work = os.path.join(h.WORK_DIR, "sdk")
        os.makedirs(work, exist_ok=True)
        for name in ("package.json", "response_format.mjs"):
            shutil.copy(os.path.join(SDK_DIR, name), work)
        if not os.path.isdir(os.path.join(work, "node_modules", "openai")):
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True,
                           timeout=600)
        server = h.Server(os.path.join(h.SOURCE_DIR, "models", "tnl-brown-12m"))
        try:
            run = subprocess.run([node, "response_format.mjs", f"http://127.0.0.1:{server.port}/v1", "tiny"],
                                 cwd=work, capture_output=True, text=True, timeout=600)
            print(run.stdout)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertIn("sdk: all calls behaved", run.stdout)
        finally:
            self.assertEqual(server.terminate(), 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
