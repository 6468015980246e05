// gRPC front end, end to end: starts the real tnl-server (tiny generated model,
// free loopback ports) and talks to it with the generated tnl.v1 stubs plus the
// standard health and reflection protocols.
#include <regex>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/server/grpc/grpc_test_support.h"

namespace {

using namespace tnl::grpc_test;
using namespace std::chrono_literals;

class GrpcFrontEnd : public ::testing::Test {
 protected:
  // A long context so that "long" generations outlast any scheduling hiccup.
  static void SetUpTestSuite() { server_ = new ServerProcess({"--max-model-len", "100000"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
  std::unique_ptr<tnl::v1::Generation::Stub> stub_ = tnl::v1::Generation::NewStub(server_->channel);
};
ServerProcess* GrpcFrontEnd::server_ = nullptr;

TEST_F(GrpcFrontEnd, UnaryAndStreamingAgreeAtTemperatureZero) {
  for (const char* prompt : {"The cat sat", "Once upon a time", "Numbers: 1 2 3"}) {
    grpc::ClientContext unary_ctx;
    tnl::v1::GenerateResponse whole;
    grpc::Status s = stub_->Generate(&unary_ctx, greedy(prompt, 10), &whole);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(whole.finish_reason(), tnl::v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(whole.token_ids_size(), 10);
    EXPECT_EQ(whole.usage().completion_tokens(), 10);
    EXPECT_GT(whole.usage().prompt_tokens(), 0);

    grpc::ClientContext stream_ctx;
    auto reader = stub_->GenerateStream(&stream_ctx, greedy(prompt, 10));
    tnl::v1::GenerateStreamResponse chunk;
    std::string text;
    int tokens = 0;
    tnl::v1::FinishReason finish = tnl::v1::FINISH_REASON_UNSPECIFIED;
    while (reader->Read(&chunk)) {
      text += chunk.text();
      tokens += chunk.token_ids_size();
      if (chunk.finish_reason() != tnl::v1::FINISH_REASON_UNSPECIFIED) {
        finish = chunk.finish_reason();
        EXPECT_EQ(chunk.usage().completion_tokens(), 10);
      }
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(text, whole.text()) << prompt;
    EXPECT_EQ(tokens, 10);
    EXPECT_EQ(finish, tnl::v1::FINISH_REASON_LENGTH);
  }
}

TEST_F(GrpcFrontEnd, LogprobsCarryTokenIds) {
  tnl::v1::GenerateRequest req = greedy("The cat", 4);
  req.set_logprobs(2);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.logprobs_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(resp.logprobs(i).token_id(), resp.token_ids(i));
    EXPECT_LE(resp.logprobs(i).logprob(), 0.0f);
    ASSERT_EQ(resp.logprobs(i).top_size(), 2);
    // Greedy: the chosen token is the best alternative.
    EXPECT_EQ(resp.logprobs(i).top(0).token_id(), resp.token_ids(i));
  }
}

TEST_F(GrpcFrontEnd, TokenizeAndModelInfo) {
  grpc::ClientContext ctx;
  tnl::v1::TokenizeRequest req;
  req.set_text("hello there");
  tnl::v1::TokenizeResponse resp;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
  EXPECT_GT(resp.token_ids_size(), 0);
  EXPECT_EQ(resp.token_ids_size(), resp.pieces_size());

  grpc::ClientContext info_ctx;
  tnl::v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&info_ctx, {}, &info).ok());
  EXPECT_EQ(info.name(), "tiny");
  EXPECT_EQ(info.backend(), "cpu");
  EXPECT_EQ(info.num_layers(), 2);
}

TEST_F(GrpcFrontEnd, InvalidArgumentsAreRejectedWithMessages) {
  tnl::v1::GenerateRequest bad = greedy("x", 4);
  bad.mutable_sampling()->set_top_p(2.0f);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  grpc::Status s = stub_->Generate(&ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("top_p"), std::string::npos) << s.error_message();

  tnl::v1::GenerateRequest empty;
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->Generate(&ctx2, empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  tnl::v1::GenerateRequest other_model = greedy("x", 4);
  other_model.set_model("gpt-4");
  grpc::ClientContext ctx3;
  EXPECT_EQ(stub_->Generate(&ctx3, other_model, &resp).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext ctx4;
  auto reader = stub_->GenerateStream(&ctx4, bad);
  tnl::v1::GenerateStreamResponse chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Structured output and token controls over gRPC: a regex constrains the text
// (std::regex checks it), logit_bias forces a token, a malformed regex or schema
// is INVALID_ARGUMENT naming the field.
TEST_F(GrpcFrontEnd, ConstraintsAndTokenControls) {
  tnl::v1::GenerateRequest req = greedy("Number:", 24);
  req.set_ignore_eos(false);  // the constraint decides where the output ends
  req.set_regex("[0-9]{2}-[a-z]{2,5}");
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  const grpc::Status constrained = stub_->Generate(&ctx, req, &resp);
  ASSERT_TRUE(constrained.ok()) << constrained.error_message();
  EXPECT_EQ(resp.finish_reason(), tnl::v1::FINISH_REASON_STOP) << resp.text();
  EXPECT_TRUE(std::regex_match(resp.text(), std::regex("[0-9]{2}-[a-z]{2,5}"))) << resp.text();

  tnl::v1::GenerateRequest forced = greedy("x", 3);
  (*forced.mutable_logit_bias())[77] = 100.0f;
  grpc::ClientContext ctx2;
  ASSERT_TRUE(stub_->Generate(&ctx2, forced, &resp).ok());
  EXPECT_EQ(std::vector<int32_t>(resp.token_ids().begin(), resp.token_ids().end()), std::vector<int32_t>({77, 77, 77}));

  tnl::v1::GenerateRequest bad_regex = greedy("x", 3);
  bad_regex.set_ignore_eos(false);
  bad_regex.set_regex("(ab");
  grpc::ClientContext ctx3;
  grpc::Status s = stub_->Generate(&ctx3, bad_regex, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("regex"), std::string::npos) << s.error_message();

  tnl::v1::GenerateRequest bad_schema = greedy("x", 3);
  bad_schema.set_ignore_eos(false);
  bad_schema.set_json_schema(R"({"type": "object", "not": {}})");
  grpc::ClientContext ctx4;
  s = stub_->Generate(&ctx4, bad_schema, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("json_schema"), std::string::npos) << s.error_message();
}

// n choices over gRPC, as on HTTP: one prompt, n choices (a fork group), each
// choice by index in the unary reply and in the stream; usage counts the
// prompt once. Seeded choices repeat across calls (the stream equals the unary reply).
TEST_F(GrpcFrontEnd, NChoicesUnaryAndStreaming) {
  tnl::v1::GenerateRequest req = greedy("Once upon a time", 12);
  req.mutable_sampling()->set_temperature(1.0f);
  req.mutable_sampling()->set_seed(42);
  req.set_n(3);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse whole;
  ASSERT_TRUE(stub_->Generate(&ctx, req, &whole).ok());
  ASSERT_EQ(whole.choices_size(), 3);
  int32_t completion = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(whole.choices(i).index(), i);
    EXPECT_EQ(whole.choices(i).token_ids_size(), 12);
    EXPECT_EQ(whole.choices(i).finish_reason(), tnl::v1::FINISH_REASON_LENGTH);
    completion += whole.choices(i).token_ids_size();
  }
  EXPECT_EQ(whole.text(), whole.choices(0).text());
  EXPECT_EQ(whole.usage().completion_tokens(), completion);
  EXPECT_EQ(whole.usage().total_tokens(), whole.usage().prompt_tokens() + completion);

  grpc::ClientContext stream_ctx;
  auto reader = stub_->GenerateStream(&stream_ctx, req);
  std::vector<std::string> texts(3);
  std::vector<int> finishes(3, 0);
  tnl::v1::GenerateStreamResponse chunk;
  int usage_chunks = 0;
  while (reader->Read(&chunk)) {
    ASSERT_GE(chunk.index(), 0);
    ASSERT_LT(chunk.index(), 3);
    texts[size_t(chunk.index())] += chunk.text();
    if (chunk.finish_reason() != tnl::v1::FINISH_REASON_UNSPECIFIED) ++finishes[size_t(chunk.index())];
    if (chunk.has_usage()) {
      ++usage_chunks;
      EXPECT_EQ(chunk.usage().completion_tokens(), completion);
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(usage_chunks, 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(finishes[size_t(i)], 1) << i;
    EXPECT_EQ(texts[size_t(i)], whole.choices(i).text()) << "choice " << i;
  }

  tnl::v1::GenerateRequest too_many = greedy("x", 2);
  too_many.set_n(17);
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->Generate(&ctx2, too_many, &whole).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcFrontEnd, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(server_->channel);
  for (const char* service : {"", "tnl.v1.Generation"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(GrpcFrontEnd, ReflectionListsTheService) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(server_->channel);
  grpc::ClientContext ctx;
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "tnl.v1.Generation"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcFrontEnd, ClientCancellationFreesTheSlot) {
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, greedy("Long story", 90000));
  tnl::v1::GenerateStreamResponse chunk;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader->Read(&chunk));
  EXPECT_GE(metric(server_->http_port, "tnl_state_slots_used"), 1);
  ctx.TryCancel();
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  double used = -1;
  for (int i = 0; i < 200 && (used = metric(server_->http_port, "tnl_state_slots_used")) != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(used, 0);
}

TEST(GrpcOverload, FullQueueIsResourceExhausted) {
  // The running stream is never read: a buffer bound large enough that it is not
  // cut off as a stalled client during the test.
  ServerProcess server({"--max-num-seqs", "1", "--max-queue", "1", "--max-model-len", "100000",
                        "--stream-buffer-bytes", "1073741824"});
  auto stub = tnl::v1::Generation::NewStub(server.channel);
  // One running, one waiting: the queue is full.
  grpc::ClientContext running_ctx, waiting_ctx;
  auto running = stub->GenerateStream(&running_ctx, greedy("first", 90000));
  tnl::v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(running->Read(&chunk));
  auto waiting = stub->GenerateStream(&waiting_ctx, greedy("second", 90000));
  for (int i = 0; i < 200 && metric(server.http_port, "tnl_requests_waiting") < 1; ++i) std::this_thread::sleep_for(10ms);

  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  grpc::Status s = stub->Generate(&ctx, greedy("third", 4), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_FALSE(s.error_message().empty());
  running_ctx.TryCancel();
  waiting_ctx.TryCancel();
  while (running->Read(&chunk)) {
  }
  while (waiting->Read(&chunk)) {
  }
  (void)running->Finish();
  (void)waiting->Finish();
}

TEST(GrpcPriority, ABetterPriorityPreemptsAndAnOutOfRangeOneIsInvalidArgument) {
  // One slot: the better request can only finish before the endless worse one by
  // preempting it (its state goes to host memory until the slot is free again).
  ServerProcess server({"--max-num-seqs", "1", "--max-model-len", "100000", "--stream-buffer-bytes", "1073741824"});
  auto stub = tnl::v1::Generation::NewStub(server.channel);
  grpc::ClientContext worse_ctx;
  tnl::v1::GenerateRequest worse = greedy("A long and unimportant story", 90000);
  worse.set_priority(10);
  auto running = stub->GenerateStream(&worse_ctx, worse);
  tnl::v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(running->Read(&chunk));
  const double preemptions = metric(server.http_port, "tnl_preemptions_total");

  tnl::v1::GenerateRequest better = greedy("Urgent", 4);
  better.set_priority(-10);
  grpc::ClientContext ctx;
  tnl::v1::GenerateResponse resp;
  grpc::Status s = stub->Generate(&ctx, better, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.token_ids_size(), 4);
  EXPECT_EQ(metric(server.http_port, "tnl_preemptions_total") - preemptions, 1);
  EXPECT_GT(metric(server.http_port, "tnl_preemption_swap_bytes_total"), 0);

  tnl::v1::GenerateRequest bad = greedy("x", 4);
  bad.set_priority(2000000);
  grpc::ClientContext bad_ctx;
  s = stub->Generate(&bad_ctx, bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("priority"), std::string::npos) << s.error_message();

  // The preempted stream resumed: it keeps producing tokens.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(running->Read(&chunk));
  worse_ctx.TryCancel();
  while (running->Read(&chunk)) {
  }
  (void)running->Finish();
}

}  // namespace
