#include "server/api/openai_request.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "server/api/json_body.h"
#include "server/api/json_fields.h"

namespace tnl::server {
namespace {

using nlohmann::json;

std::optional<int32_t> token_id(const json& v) {
  if (!v.is_number_integer()) return std::nullopt;
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max())) {
    return std::numeric_limits<int32_t>::max();  // out of vocabulary: validate() names it
  }
  const int64_t i = v.get<int64_t>();
  if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max()) {
    return std::numeric_limits<int32_t>::max();
  }
  return int32_t(i);
}

// OpenAI's four prompt shapes: "text", ["text", ...], [id, ...], [[id, ...], ...].
std::optional<ApiError> read_prompts(const json& prompt, std::vector<PromptInput>* out) {
  const ApiError shape_error = invalid_request(
      "prompt must be a string, a list of strings, a list of token ids or a list of token-id lists", "prompt");
  if (prompt.is_string()) {
    out->push_back({true, prompt.get<std::string>(), {}});
    return std::nullopt;
  }
  if (!prompt.is_array()) return shape_error;
  if (prompt.empty()) return invalid_request("prompt must not be empty", "prompt");
  if (prompt[0].is_number()) {
    PromptInput ids{false, {}, {}};
    for (const json& v : prompt) {
      std::optional<int32_t> id = token_id(v);
      if (!id) return shape_error;
      ids.ids.push_back(*id);
    }
    out->push_back(std::move(ids));
    return std::nullopt;
  }
  for (const json& element : prompt) {
    if (element.is_string()) {
      out->push_back({true, element.get<std::string>(), {}});
    } else if (element.is_array()) {
      PromptInput ids{false, {}, {}};
      for (const json& v : element) {
        std::optional<int32_t> id = token_id(v);
        if (!id) return shape_error;
        ids.ids.push_back(*id);
      }
      out->push_back(std::move(ids));
    } else {
      return shape_error;
    }
  }
  return std::nullopt;
}

// Structured output: OpenAI's response_format ({"type": "text" | "json_object" |
// "json_schema", "json_schema": {"name", "schema", "strict", "description"}}),
// or a `regex` or a `grammar` (GBNF) string. At most one of them.
void read_constraint(FieldReader& fields, CompletionSpec* spec) {
  auto set = [&](ConstraintSpec::Kind kind, std::string text, const char* param) {
    if (spec->constraint) {
      fields.fail(invalid_request("only one of response_format (json), regex and grammar may be given", param));
      return;
    }
    spec->constraint = ConstraintSpec{kind, std::move(text)};
    spec->constraint_param = param;
  };
  if (const json* format = fields.find("response_format")) {
    if (!format->is_object() || !format->contains("type") || !(*format)["type"].is_string()) {
      fields.fail(invalid_request("response_format must be an object with a string type", "response_format"));
      return;
    }
    FieldReader f(*format);
    std::string type;
    f.string("type", &type);
    if (type == "json_object") {
      set(ConstraintSpec::Kind::kJsonObject, "", "response_format");
    } else if (type == "json_schema") {
      const json* js = f.find("json_schema");
      if (!js || !js->is_object()) {
        fields.fail(invalid_request("response_format json_schema needs a json_schema object", "response_format"));
        return;
      }
      FieldReader schema_fields(*js);
      std::string name, description;
      bool strict = false;
      schema_fields.string("name", &name);
      schema_fields.string("description", &description);
      schema_fields.boolean("strict", &strict);  // always enforced: the output is constrained either way
      const json* schema = schema_fields.find("schema");
      if (!schema || !schema->is_object()) {
        fields.fail(invalid_request("response_format.json_schema.schema must be a JSON Schema object",
                                    "response_format"));
        return;
      }
      schema_fields.reject_unread();
      if (schema_fields.error()) {
        ApiError e = *schema_fields.error();
        e.param = "response_format";
        fields.fail(std::move(e));
        return;
      }
      set(ConstraintSpec::Kind::kJsonSchema, schema->dump(), "response_format");
    } else if (type != "text") {
      f.fail(invalid_request("response_format type must be text, json_object or json_schema, got " + type,
                             "response_format"));
    }
    f.reject_unread();
    if (f.error()) {
      ApiError e = *f.error();
      e.param = "response_format";
      fields.fail(std::move(e));
    }
  }
  std::string text;
  if (fields.find("regex")) {
    fields.string("regex", &text);
    set(ConstraintSpec::Kind::kRegex, text, "regex");
  }
  if (fields.find("grammar")) {
    fields.string("grammar", &text);
    set(ConstraintSpec::Kind::kGrammar, text, "grammar");
  }
}

// logit_bias, allowed_token_ids, min_tokens, bad_words, include_stop_str_in_output.
void read_token_controls(FieldReader& fields, CompletionSpec* spec) {
  read_constraint(fields, spec);
  if (const json* bias = fields.find("logit_bias")) {
    if (!bias->is_null() && !bias->is_object()) {
      fields.fail(invalid_request("logit_bias must map token ids (as strings) to numbers", "logit_bias"));
    } else if (bias->is_object()) {
      for (const auto& [key, value] : bias->items()) {
        int32_t id = -1;
        size_t used = 0;
        try {
          id = int32_t(std::stol(key, &used));
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != key.size() || key.empty() || !value.is_number()) {
          fields.fail(invalid_request("logit_bias must map token ids (as strings) to numbers, got \"" + key + "\"",
                                      "logit_bias"));
          return;
        }
        spec->logit_bias.emplace_back(id, value.get<float>());
      }
    }
  }
  fields.integer_list("allowed_token_ids", &spec->allowed_token_ids);
  fields.integer("min_tokens", &spec->min_tokens);
  fields.string_or_list("bad_words", &spec->bad_words);
  fields.boolean("include_stop_str_in_output", &spec->include_stop_str_in_output);
}

// Parameters both endpoints share.
void read_common(FieldReader& fields, CompletionSpec* spec) {
  fields.string("model", &spec->model);
  fields.integer("max_tokens", &spec->max_tokens);
  fields.number("temperature", &spec->sampling.temperature);
  fields.number("top_p", &spec->sampling.top_p);
  fields.integer("top_k", &spec->sampling.top_k);
  fields.number("min_p", &spec->sampling.min_p);
  fields.number("presence_penalty", &spec->sampling.presence_penalty);
  fields.number("frequency_penalty", &spec->sampling.frequency_penalty);
  fields.number("repetition_penalty", &spec->sampling.repetition_penalty);
  fields.seed("seed", &spec->sampling.seed);
  fields.string_or_list("stop", &spec->stop);
  fields.integer_list("stop_token_ids", &spec->stop_token_ids);
  fields.boolean("ignore_eos", &spec->ignore_eos);
  fields.integer("n", &spec->n);
  read_token_controls(fields, spec);
  fields.boolean("stream", &spec->stream);
  fields.integer("priority", &spec->priority);  // vLLM's extension: lower is served first
  // OpenAI's end-user id: for the client's abuse monitoring; it changes nothing
  // in the output (accepted, not used).
  std::string user;
  fields.string("user", &user);
  if (const json* options = fields.find("stream_options")) {
    if (!options->is_object()) {
      fields.fail(invalid_request("stream_options must be an object", "stream_options"));
    } else {
      FieldReader option_fields(*options);
      option_fields.boolean("include_usage", &spec->include_usage);
      option_fields.reject_unread();
      if (option_fields.error()) fields.fail(*option_fields.error());
    }
  }
}

// Message content: a string, or a list of {"type": "text", "text": ...} parts (joined).
std::optional<ApiError> read_content(const json& content, std::string* out) {
  if (content.is_null()) return std::nullopt;
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (content.is_array()) {
    for (const json& part : content) {
      if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        return invalid_request("message content parts must be {\"type\": \"text\", \"text\": string}",
                               "messages");
      }
      *out += part["text"].get<std::string>();
    }
    return std::nullopt;
  }
  return invalid_request("message content must be a string or a list of text parts", "messages");
}

ApiResult<CompletionSpec> finish(CompletionSpec spec, FieldReader& fields, const SpecLimits& limits) {
  fields.reject_unread();
  if (fields.error()) return *fields.error();
  if (std::optional<ApiError> error = validate_completion_spec(spec, limits)) return *error;
  return spec;
}

ApiResult<CompletionSpec> parse_completion_json(const json& body, const SpecLimits& limits) {
  CompletionSpec spec;
  spec.kind = ApiKind::kCompletion;
  FieldReader fields(body);
  const json* prompt = fields.find("prompt");
  if (!prompt) return invalid_request("prompt is required", "prompt");
  if (std::optional<ApiError> error = read_prompts(*prompt, &spec.prompts)) return *error;
  read_common(fields, &spec);
  fields.boolean("echo", &spec.echo);
  if (const json* logprobs = fields.find("logprobs")) {
    // Legacy completions: an integer (number of alternatives); `true` is accepted as 0.
    if (logprobs->is_boolean()) {
      spec.sampling.logprobs = logprobs->get<bool>() ? 0 : -1;
    } else {
      int32_t k = -1;
      fields.integer("logprobs", &k);
      if (!fields.error() && k < 0) {
        fields.fail(invalid_request("logprobs must be in [0, " + std::to_string(limits.max_logprobs) + "]",
                                    "logprobs"));
      }
      spec.sampling.logprobs = k;
    }
  }
  return finish(std::move(spec), fields, limits);
}

ApiResult<CompletionSpec> parse_chat_json(const json& body, const SpecLimits& limits) {
  CompletionSpec spec;
  spec.kind = ApiKind::kChat;
  FieldReader fields(body);
  const json* messages = fields.find("messages");
  if (!messages) return invalid_request("messages is required", "messages");
  if (!messages->is_array()) return invalid_request("messages must be a list of messages", "messages");
  for (const json& m : *messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return invalid_request("each message must be an object with a string role", "messages");
    }
    ChatMessage message;
    message.role = m["role"].get<std::string>();
    if (m.contains("content")) {
      if (std::optional<ApiError> error = read_content(m["content"], &message.content)) return *error;
    }
    spec.messages.push_back(std::move(message));
  }
  read_common(fields, &spec);
  fields.integer("max_completion_tokens", &spec.max_tokens);
  bool logprobs = false;
  int32_t top_logprobs = 0;
  fields.boolean("logprobs", &logprobs);
  fields.integer("top_logprobs", &top_logprobs);
  if (!fields.error() && fields.find("top_logprobs") && !logprobs) {
    fields.fail(invalid_request("top_logprobs requires logprobs to be true", "top_logprobs"));
  }
  if (!fields.error() && top_logprobs < 0) {
    fields.fail(invalid_request("top_logprobs must be in [0, " + std::to_string(limits.max_logprobs) + "]",
                                "top_logprobs"));
  }
  spec.sampling.logprobs = logprobs ? top_logprobs : -1;
  return finish(std::move(spec), fields, limits);
}

// nlohmann::json may throw on exotic input (e.g. type errors inside value()); a
// parser bug must still answer 400, never take the server down.
template <typename Parse>
ApiResult<CompletionSpec> guarded(std::string_view body, Parse parse) {
  try {
    ApiResult<json> doc = parse_json_object_body(body);
    if (!doc.ok()) return doc.error();
    return parse(doc.value());
  } catch (const std::exception& e) {
    return invalid_request(std::string("malformed request: ") + e.what());
  }
}

}  // namespace

ApiResult<CompletionSpec> parse_completion_request(std::string_view body, const SpecLimits& limits) {
  return guarded(body, [&](const json& doc) { return parse_completion_json(doc, limits); });
}

ApiResult<CompletionSpec> parse_chat_request(std::string_view body, const SpecLimits& limits) {
  return guarded(body, [&](const json& doc) { return parse_chat_json(doc, limits); });
}

}  // namespace tnl::server
