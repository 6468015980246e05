"""Structured output and token controls through the real tnl-server on the
default model (models/tnl-brown-12m, CPU backend): for a battery of JSON
schemas, regexes and a grammar, every sampled output that ends with
finish_reason "stop" validates — checked here by an independent validator
(Python's json and re plus the small JSON Schema checker below, none of the
server's code); logit_bias, min_tokens, allowed_token_ids, bad_words and
include_stop_str_in_output behave per their definitions; malformed specs are
400s naming the field."""
import json
import os
import re
import sys
import unittest

import server_harness as h

SERVER = None
DEFAULT_MODEL = os.path.join(h.SOURCE_DIR, "models", "tnl-brown-12m")


def setUpModule():
    global SERVER
    SERVER = h.Server(DEFAULT_MODEL, "--max-num-seqs", "16")


def tearDownModule():
    if SERVER:
        assert SERVER.terminate() == 0


# ---- an independent JSON Schema checker (the subset the battery uses) ----

def validate(value, schema, path="$"):
    """Returns None when `value` satisfies `schema`, else what is wrong."""
    if "anyOf" in schema:
        if all(validate(value, s, path) for s in schema["anyOf"]):
            return f"{path}: matches no anyOf branch"
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} not in enum"
    if "const" in schema and value != schema["const"]:
        return f"{path}: {value!r} is not the const"
    t = schema.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if types and not any(checks[x](value) for x in types):
        return f"{path}: {value!r} is not of type {types}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                return f"{path}: required {key!r} missing"
        extra = schema.get("additionalProperties", False if props else True)
        for key, v in value.items():
            if key in props:
                err = validate(v, props[key], f"{path}.{key}")
                if err:
                    return err
            elif extra is False:
                return f"{path}: unexpected key {key!r}"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            return f"{path}: {len(value)} items"
        if "items" in schema:
            for i, v in enumerate(value):
                err = validate(v, schema["items"], f"{path}[{i}]")
                if err:
                    return err
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
            return f"{path}: length {len(value)}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{path}: {value!r} does not match {schema['pattern']}"
    return None


SCHEMAS = {
    "nested_object": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer"},
            "address": {"type": "object",
                        "properties": {"city": {"type": "string", "maxLength": 20},
                                       "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                        "required": ["city", "zip"]},
            "nickname": {"type": "string", "maxLength": 12},
        },
        "required": ["name", "age", "address"],
    },
    "array_of_enums": {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"enum": ["red", "green", "blue"]},
                                  "minItems": 1, "maxItems": 4},
                       "count": {"type": "number"}},
        "required": ["colors", "count"],
    },
    "strings_with_escapes": {
        "type": "object",
        "properties": {"quote": {"type": "string", "maxLength": 40},
                       "path": {"type": "string", "pattern": "^[a-z]+\\\\[a-z]+$"}},
        "required": ["quote", "path"],
    },
    "optional_and_nullable": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "tag": {"type": ["string", "null"], "maxLength": 10},
                       "ok": {"type": "boolean"}, "score": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
        "required": ["id", "ok"],
    },
    "list_of_records": {
        "type": "array",
        "items": {"type": "object", "properties": {"k": {"type": "string", "maxLength": 8},
                                                   "v": {"type": "integer"}}, "required": ["k", "v"]},
        "minItems": 1, "maxItems": 3,
    },
}

REGEXES = [r"[0-9]{3}-[0-9]{4}", r"(yes|no|maybe), because [a-z ]{1,30}\.", r"[A-Z][a-z]{2,10}( [A-Z][a-z]{2,10}){0,2}"]

GRAMMAR = r'''
root ::= "SELECT " cols " FROM " name (" WHERE " name " = " num)?
cols ::= name (", " name)*
name ::= [a-z] [a-z_]{0,9}
num ::= [0-9]{1,4}
'''
GRAMMAR_RE = r"SELECT [a-z][a-z_]{0,9}(, [a-z][a-z_]{0,9})* FROM [a-z][a-z_]{0,9}( WHERE [a-z][a-z_]{0,9} = [0-9]{1,4})?"


def complete(body, path="/v1/completions"):
    status, _, reply = SERVER.post(path, body, timeout=300)
    assert status == 200, reply
    return reply


def sampled(extra, n=4, max_tokens=160, prompt="Here is the answer:"):
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 1.0, "seed": 11,
            "n": n}
    body.update(extra)
    return complete(body)["choices"]


class StructuredOutput(unittest.TestCase):
    def check_choices(self, choices, check):
        stopped = 0
        for c in choices:
            if c["finish_reason"] == "length":
                continue  # ran out of max_tokens: need not parse (docs/api.md)
            self.assertEqual(c["finish_reason"], "stop", c)
            stopped += 1
            check(c["text"])
        return stopped

    def test_json_schemas_validate(self):
        stopped = 0
        for name, schema in SCHEMAS.items():
            choices = sampled({"response_format": {"type": "json_schema",
                                                   "json_schema": {"name": name, "schema": schema}}})

            def check(text, schema=schema, name=name):
                value = json.loads(text)
                self.assertIsNone(validate(value, schema), f"{name}: {text}")
            stopped += self.check_choices(choices, check)
        self.assertGreaterEqual(stopped, len(SCHEMAS) * 2, "too few outputs completed within max_tokens")

    def test_json_object_parses(self):
        # Free-form JSON from a model that never saw any rarely closes by itself:
        # a bias on "}" (allowed only where the object may close) makes it do so.
        status, _, reply = SERVER.post("/tokenize", {"prompt": "}", "add_special": False})
        self.assertEqual(status, 200, reply)
        close = reply["tokens"][-1]
        choices = sampled({"response_format": {"type": "json_object"}, "logit_bias": {str(close): 6}},
                          max_tokens=200)

        def check(text):
            self.assertIsInstance(json.loads(text), dict, text)
        self.assertGreaterEqual(self.check_choices(choices, check), 1)
        for c in choices:
            self.assertTrue(c["text"].lstrip().startswith("{"), c["text"])

    def test_regexes_match(self):
        for pattern in REGEXES:
            choices = sampled({"regex": pattern}, max_tokens=60)
            stopped = self.check_choices(choices, lambda t, p=pattern: self.assertRegex(t, "^(?:" + p + ")$"))
            self.assertGreaterEqual(stopped, 2, pattern)

    def test_grammar_matches(self):
        choices = sampled({"grammar": GRAMMAR}, max_tokens=150, prompt="Query:")
        stopped = self.check_choices(choices, lambda t: self.assertRegex(t, "^(?:" + GRAMMAR_RE + ")$"))
        self.assertGreaterEqual(stopped, 1)
        for c in choices:
            self.assertTrue(c["text"].startswith("SELECT "), c["text"])

    def test_chat_and_greedy_paths(self):
        schema = SCHEMAS["nested_object"]
        body = {"messages": [{"role": "user", "content": "Describe a person."}],
                "max_tokens": 160, "temperature": 0,
                "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}
        reply = complete(body, "/v1/chat/completions")
        choice = reply["choices"][0]
        if choice["finish_reason"] == "stop":
            self.assertIsNone(validate(json.loads(choice["message"]["content"]), schema))
        status, chunks, done = SERVER.stream("/v1/completions", {
            "prompt": "Code:", "max_tokens": 40, "temperature": 0, "stream": True,
            "regex": REGEXES[0]})
        self.assertEqual(status, 200)
        self.assertTrue(done)
        self.assertRegex(h.stream_text(chunks)[0], "^(?:" + REGEXES[0] + ")$")

    def test_malformed_specs_are_400s_naming_the_field(self):
        cases = [
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                "type": "object", "patternProperties": {"a": {}}}}}}, "response_format", "patternProperties"),
            ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format", "schema"),
            ({"response_format": {"type": "xml"}}, "response_format", "xml"),
            ({"regex": "(ab"}, "regex", "unbalanced"),
            ({"regex": "a*?"}, "regex", "lazy"),
            ({"grammar": "root ::= value"}, "grammar", "undefined rule"),
            ({"regex": "a", "grammar": "root ::= \"a\""}, "grammar", "only one"),
            ({"regex": "[0-9]+", "ignore_eos": True}, "ignore_eos", "regex"),
            ({"logit_bias": {"5": 101}}, "logit_bias", "[-100, 100]"),
            ({"logit_bias": {"abc": 1}}, "logit_bias", "token ids"),
            ({"logit_bias": {"99999999": 1}}, "logit_bias", "outside the vocabulary"),
            ({"allowed_token_ids": [-1]}, "allowed_token_ids", "outside"),
            ({"min_tokens": 20, "max_tokens": 5}, "min_tokens", "max_tokens"),
            ({"bad_words": [""]}, "bad_words", "empty"),
        ]
        for extra, param, words in cases:
            body = {"prompt": "x", "max_tokens": 5}
            body.update(extra)
            status, _, reply = SERVER.post("/v1/completions", body)
            self.assertEqual(status, 400, (extra, reply))
            self.assertEqual(reply["error"]["param"], param, (extra, reply))
            self.assertIn(words, reply["error"]["message"], (extra, reply))


class TokenControls(unittest.TestCase):
    def greedy(self, extra, prompt="The jury said", max_tokens=24):
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "logprobs": 0}
        body.update(extra)
        reply = complete(body)
        return reply["choices"][0], reply["usage"]

    def token(self, text):
        """The id of a text that is one token on its own."""
        # SentencePiece adds the leading space itself (its dummy prefix).
        status, _, reply = SERVER.post("/tokenize", {"prompt": text.lstrip(" "), "add_special": False})
        self.assertEqual(status, 200, reply)
        self.assertEqual(len(reply["tokens"]), 1, (text, reply))
        return reply["tokens"][0]

    def test_logit_bias_forces_and_bans(self):
        cat, dog = self.token(" cat"), self.token(" dog")
        forced, _ = self.greedy({"logit_bias": {str(cat): 100}}, max_tokens=4)
        self.assertEqual(forced["text"], " cat" * 4)
        # Only two tokens allowed, the likelier one banned: the other every time.
        both = {"allowed_token_ids": [cat, dog]}
        first, _ = self.greedy(both, max_tokens=1)
        winner, loser = (cat, " dog") if first["text"] == " cat" else (dog, " cat")
        banned, _ = self.greedy(dict(both, logit_bias={str(winner): -100}), max_tokens=4)
        self.assertEqual(banned["text"], loser * 4)

    def test_allowed_token_ids_restrict_every_token(self):
        words = [" the", " cat", " sat", " on", " dog"]
        allowed = [self.token(w) for w in words]
        choice, _ = self.greedy({"allowed_token_ids": allowed, "temperature": 1.0, "seed": 3}, max_tokens=20)
        for piece in choice["logprobs"]["tokens"]:
            self.assertIn(piece, words, choice["text"])
        self.assertRegex(choice["text"], "^(?:" + "|".join(re.escape(w) for w in words) + ")+$")

    def test_min_tokens_holds_back_eos_and_stop_tokens(self):
        cat = self.token(" cat")
        force = {"logit_bias": {str(cat): 100}, "stop_token_ids": [cat]}
        stopped, usage = self.greedy(force, max_tokens=10)
        self.assertEqual((stopped["finish_reason"], stopped["text"], usage["completion_tokens"]), ("stop", "", 1))
        held, usage = self.greedy(dict(force, min_tokens=5), max_tokens=10)
        self.assertEqual(held["finish_reason"], "stop")
        self.assertEqual(usage["completion_tokens"], 6, held)  # 5 held back, then the stop token
        self.assertNotIn(" cat", held["logprobs"]["tokens"][:5])

    def test_bad_words_never_appear(self):
        plain, _ = self.greedy({}, max_tokens=40)
        words = []
        for piece in plain["logprobs"]["tokens"]:
            w = piece.strip()
            if piece.startswith(" ") and len(w) > 2 and w.isalpha() and w not in words:
                words.append(w)
        words = words[:3]
        self.assertTrue(words, plain["text"])
        cleaned, _ = self.greedy({"bad_words": words}, max_tokens=40)
        self.assertNotEqual(cleaned["text"], plain["text"])
        for w in words:
            self.assertNotIn(" " + w, cleaned["logprobs"]["tokens"], cleaned["text"])

    def test_include_stop_str_in_output(self):
        plain, _ = self.greedy({}, max_tokens=30)
        stop = plain["text"].split()[2]
        cut, _ = self.greedy({"stop": [stop]}, max_tokens=30)
        kept, _ = self.greedy({"stop": [stop], "include_stop_str_in_output": True}, max_tokens=30)
        self.assertEqual(cut["finish_reason"], "stop")
        self.assertEqual(kept["finish_reason"], "stop")
        self.assertEqual(kept["text"], cut["text"] + stop)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
