// The OpenAI Node SDK's structured-output calls against tnl-server:
// chat.completions.create with response_format json_schema and json_object,
// completions.create, and a bad schema surfacing as the SDK's BadRequestError.
// Usage: node response_format.mjs http://127.0.0.1:PORT/v1 MODEL
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused" });

const schema = {
  type: "object",
  properties: {
    city: { type: "string", maxLength: 20 },
    population: { type: "integer" },
    rivers: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 },
  },
  required: ["city", "population", "rivers"],
};

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Describe a city as JSON." }],
  max_tokens: 200,
  temperature: 0,
  response_format: { type: "json_schema", json_schema: { name: "city", schema, strict: true } },
});
const choice = chat.choices[0];
console.log("json_schema:", choice.finish_reason, choice.message.content);
if (choice.finish_reason === "stop") {
  const value = JSON.parse(choice.message.content);
  assert.equal(typeof value.city, "string");
  assert.ok(Number.isInteger(value.population));
  assert.ok(Array.isArray(value.rivers) && value.rivers.length <= 3);
} else {
  assert.equal(choice.finish_reason, "length");
}

const object = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Any JSON object." }],
  max_tokens: 200,
  temperature: 0.7,
  seed: 4,
  response_format: { type: "json_object" },
});
console.log("json_object:", object.choices[0].finish_reason, object.choices[0].message.content);
if (object.choices[0].finish_reason === "stop") {
  assert.equal(typeof JSON.parse(object.choices[0].message.content), "object");
}

const completion = await client.completions.create({
  model,
  prompt: "Phone:",
  max_tokens: 20,
  temperature: 0,
  regex: "[0-9]{3}-[0-9]{4}",
});
console.log("regex:", completion.choices[0].text);
assert.match(completion.choices[0].text, /^[0-9]{3}-[0-9]{4}$/);

await assert.rejects(
  client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "object", not: {} } } },
  }),
  (err) => err instanceof OpenAI.BadRequestError && /not/.test(err.message),
);
console.log("sdk: all calls behaved");
