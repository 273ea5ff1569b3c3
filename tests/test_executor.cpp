// Executor semantics: only what is needed, order, absent values, cache, interrupt, workers.
#include <thread>

#include "pipeline/config_loader.h"
#include "pipeline/pipeline.h"
#include "pipeline_test_stages.h"
#include "test_support.h"

using namespace a2a;

namespace {

// src -> add1 -> add2 -> out1 ; src -> gate -> add3 -> out2 ; lone (not needed by out1)
GraphBuilder diamond(int workers = 1) {
  test::register_test_stages();
  GraphBuilder b;
  b.name("diamond").seed(7).workers(workers);
  b.stage("src", "t_source").param("value", 2.0);
  b.stage("noise", "t_source").param("value", 0.0);
  b.stage("add1", "t_add").param("offset", 1.0).wire("a", "src.out").wire("b", "noise.noise");
  b.stage("add2", "t_add").param("offset", 10.0).wire("a", "add1.out");
  b.stage("gate", "t_gate").param("open", true).wire("in", "src.out");
  b.stage("add3", "t_add").wire("a", "gate.out").wire("b", "add2.out");
  b.stage("lone", "t_source");
  b.output("out1", "add2.out").output("out2", "add3.out").output("lone", "lone.out");
  return b;
}

std::vector<std::string> ran_order(const RunResult& r) {
  std::vector<std::string> ids;
  for (const auto& s : r.stages) ids.push_back(s.id);
  return ids;
}

}  // namespace

TEST_CASE("only the stages the requested outputs need run, in topological order", "[executor]") {
  test::reset_run_counts();
  Pipeline p(diamond());
  RunResult r = p.run({{}, {"out1"}});
  CHECK(ran_order(r) == std::vector<std::string>{"src", "noise", "add1", "add2"});
  CHECK(test::run_count("gate") == 0);
  CHECK(test::run_count("lone") == 0);
  REQUIRE(r.outputs.count("out1"));
  CHECK(r.outputs.count("out2") == 0);
  auto expected = 2.0 + 1.0 + 10.0;
  auto noise = r.outputs.at("out1").tensor() - expected;
  CHECK(noise.abs().max().item<double>() > 0);  // the noise input arrived
}

TEST_CASE("an absent value skips the stages that require it; optional inputs may be absent", "[executor]") {
  test::reset_run_counts();
  GraphBuilder b = diamond();
  b.mutable_spec().stage("gate")->params["open"] = false;
  Pipeline p(b);
  RunResult r = p.run();
  REQUIRE(r.record("add3") != nullptr);
  CHECK(r.record("add3")->status == StageRecord::Status::Skipped);
  CHECK(r.record("add3")->note.find("'a'") != std::string::npos);
  CHECK(r.outputs.count("out2") == 0);
  CHECK(r.outputs.count("out1") == 1);
  CHECK(test::run_count("add3") == 0);

  // add with only its required input still runs when the optional one is absent
  GraphBuilder c;
  c.stage("src", "t_source").param("value", 1.0);
  c.stage("gate", "t_gate").param("open", false).wire("in", "src.out");
  c.stage("add", "t_add").wire("a", "src.out").wire("b", "gate.out");
  c.output("o", "add.out");
  Pipeline q(c);
  RunResult rq = q.run();
  REQUIRE(rq.outputs.count("o"));
  CHECK(rq.outputs.at("o").tensor().sum().item<double>() == Approx(4.0));
}

TEST_CASE("the cache reuses unchanged stages and recomputes changed ones", "[executor]") {
  test::reset_run_counts();
  Pipeline p(diamond());
  std::vector<StageEvent> events;
  p.set_event_sink([&](const StageEvent& e) { events.push_back(e); });
  RunResult first = p.run({{}, {"out1"}});
  CHECK(test::run_count("add1") == 1);
  RunResult second = p.run({{}, {"out1"}});
  for (const auto& s : second.stages) CHECK(s.status == StageRecord::Status::Cached);
  CHECK(test::run_count("add1") == 1);
  CHECK(torch::equal(first.outputs.at("out1").tensor(), second.outputs.at("out1").tensor()));
  CHECK(std::count_if(events.begin(), events.end(),
                      [](const StageEvent& e) { return e.kind == StageEvent::Kind::Cached; }) == 4);

  // Changing the last stage's parameter recomputes only that stage.
  p.set_param("add2", "offset", 20.0);
  RunResult third = p.run({{}, {"out1"}});
  CHECK(third.record("src")->status == StageRecord::Status::Cached);
  CHECK(third.record("add1")->status == StageRecord::Status::Cached);
  CHECK(third.record("add2")->status == StageRecord::Status::Ran);
  CHECK(test::run_count("add2") == 2);
  CHECK((third.outputs.at("out1").tensor() - first.outputs.at("out1").tensor()).mean().item<double>() == Approx(10.0));

  // Changing an upstream parameter invalidates everything downstream (by content).
  p.set_param("src", "value", 3.0);
  RunResult fourth = p.run({{}, {"out1"}});
  CHECK(fourth.record("noise")->status == StageRecord::Status::Cached);
  CHECK(fourth.record("src")->status == StageRecord::Status::Ran);
  CHECK(fourth.record("add1")->status == StageRecord::Status::Ran);
}

TEST_CASE("results are identical with one and several workers", "[executor]") {
  Pipeline one(diamond(1));
  Pipeline four(diamond(4));
  RunResult a = one.run();
  RunResult b = four.run();
  REQUIRE(a.outputs.size() == b.outputs.size());
  for (const auto& kv : a.outputs) CHECK(torch::equal(kv.second.tensor(), b.outputs.at(kv.first).tensor()));
}

TEST_CASE("the tiny text-to-image graph gives the same image with one and three workers", "[executor]") {
  // Two prompts through two encoders and two denoisers: stages that can run side by side.
  const char* yaml = R"(seed: 11
inputs: {prompt: {type: text, default: "a red fox"}}
stages:
  - id: encode
    type: clip_text_encoder
    inputs: {text: inputs.prompt}
  - id: denoise_a
    type: latent_diffusion
    params: {steps: 2, width: 16, height: 16}
    inputs: {conditioning: encode.embedding, negative_conditioning: encode.negative_embedding}
  - id: denoise_b
    type: latent_diffusion
    params: {steps: 2, width: 16, height: 16, scheduler: euler}
    inputs: {conditioning: encode.embedding}
  - id: decode_a
    type: vae_decode
    inputs: {latent: denoise_a.latent}
  - id: decode_b
    type: vae_decode
    inputs: {latent: denoise_b.latent}
outputs:
  a: decode_a.image
  b: decode_b.image
)";
  RunResult serial = Pipeline(parse_graph_yaml(yaml, "").workers(1)).run();
  RunResult parallel = Pipeline(parse_graph_yaml(yaml, "").workers(3)).run();
  for (const char* name : {"a", "b"}) {
    INFO("output " << name);
    const at::Tensor image = serial.outputs.at(name).tensor();
    CHECK(image.std().item<double>() > 0.0);
    CHECK(torch::equal(image, parallel.outputs.at(name).tensor()));
  }
  CHECK_FALSE(torch::equal(serial.outputs.at("a").tensor(), serial.outputs.at("b").tensor()));
}

TEST_CASE("interrupt stops inside a stage and between stages", "[executor]") {
  test::register_test_stages();
  GraphBuilder b;
  b.stage("src", "t_source");
  b.stage("slow", "t_slow").param("steps", 100000).param("step_ms", 1).wire("in", "src.out");
  b.stage("after", "t_add").wire("a", "slow.out");
  b.output("o", "after.out");
  Pipeline p(b);
  test::reset_run_counts();
  bool saw_progress = false;
  p.set_event_sink([&](const StageEvent& e) {
    if (e.kind == StageEvent::Kind::Progress && e.done == 5) {
      saw_progress = true;
      p.cancellation().cancel();
    }
  });
  try {
    p.run();
    FAIL("the run was not interrupted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Cancelled);
  }
  CHECK(saw_progress);
  CHECK(test::run_count("after") == 0);

  // Cancelled before the run: no stage starts.
  test::reset_run_counts();
  p.cancellation().cancel();
  CHECK_THROWS_AS(p.run(), Error);
  CHECK(test::run_count("src") == 0);
  p.cancellation().reset();
}

TEST_CASE("a failing stage reports a failed event and the error", "[executor]") {
  test::register_test_stages();
  for (int workers : {1, 3}) {
    INFO("workers " << workers);
    GraphBuilder b;
    b.workers(workers);
    b.stage("src", "t_source").param("size", 3);
    b.stage("boom", "t_fail").wire("in", "src.out");
    b.stage("after", "t_add").wire("a", "boom.out");
    b.output("o", "after.out");
    Pipeline p(b);
    std::vector<StageEvent> failed;
    p.set_event_sink([&](const StageEvent& e) {
      if (e.kind == StageEvent::Kind::Failed) failed.push_back(e);
    });
    test::reset_run_counts();
    try {
      p.run();
      FAIL("the run did not fail");
    } catch (const Error& e) {
      CHECK(e.code() == "t_failed");
      CHECK(e.message().find("fails on purpose") != std::string::npos);
    }
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].stage_id == "boom");
    CHECK(failed[0].stage_type == "t_fail");
    CHECK(failed[0].message.find("fails on purpose") != std::string::npos);
    CHECK(test::run_count("src") == 1);
    CHECK(test::run_count("boom") == 1);
    CHECK(test::run_count("after") == 0);
  }
}

TEST_CASE("graph inputs: defaults, overrides, unknown names, wrong types", "[executor]") {
  test::register_test_stages();
  GraphBuilder b;
  b.input("words", ValueType::Text, Json("fox"));
  b.stage("t", "t_text").wire("text", "inputs.words");
  b.output("o", "t.text").output("raw", "inputs.words");
  Pipeline p(b);
  CHECK(p.run().outputs.at("o").text() == "<fox>");
  RunRequest req;
  req.inputs.emplace("words", Value::text("cat"));
  RunResult r = p.run(req);
  CHECK(r.outputs.at("o").text() == "<cat>");
  CHECK(r.outputs.at("raw").text() == "cat");
  RunRequest bad;
  bad.inputs.emplace("wrods", Value::text("x"));
  CHECK_THROWS_WITH(p.run(bad), Catch::Contains("did you mean 'words'"));
  RunRequest wrong;
  wrong.inputs.emplace("words", Value::tensor(torch::zeros({1})));
  CHECK_THROWS_AS(p.run(wrong), Error);
}

TEST_CASE("the builder and YAML produce the same graph", "[executor][builder]") {
  test::register_test_stages();
  const char* yaml = R"(name: diamond
seed: 7
stages:
  - id: src
    type: t_source
    params: {value: 2.0}
  - id: noise
    type: t_source
    params: {value: 0.0}
  - id: add1
    type: t_add
    params: {offset: 1.0}
    inputs: {a: src.out, b: noise.noise}
  - id: add2
    type: t_add
    params: {offset: 10.0}
    inputs: {a: add1.out}
  - id: gate
    type: t_gate
    params: {open: true}
    inputs: {in: src.out}
  - id: add3
    type: t_add
    inputs: {a: gate.out, b: add2.out}
  - id: lone
    type: t_source
outputs:
  out1: add2.out
  out2: {from: add3.out}
  lone: lone.out
)";
  ValidatedGraph from_yaml = parse_graph_yaml(yaml, "").build();
  ValidatedGraph from_code = diamond().build();
  CHECK(from_yaml.spec.canonical() == from_code.spec.canonical());
  Pipeline a(from_yaml), b(from_code);
  RunResult ra = a.run(), rb = b.run();
  for (const auto& kv : ra.outputs) CHECK(torch::equal(kv.second.tensor(), rb.outputs.at(kv.first).tensor()));
}

TEST_CASE("stages that name the same weights share one module", "[executor]") {
  ModuleCache cache;
  int created = 0;
  auto make = [&] {
    ++created;
    return std::make_shared<int>(42);
  };
  auto a = cache.get<int>("unet:/w", make);
  auto b = cache.get<int>("unet:/w", make);
  auto c = cache.get<int>("vae:/w", make);
  CHECK(a.get() == b.get());
  CHECK(a.get() != c.get());
  CHECK(created == 2);
}

TEST_CASE("values share tensor data when copied", "[values]") {
  auto t = torch::rand({1, 3, 8, 8});
  Value v = Value::image(t);
  Value copy = v;
  CHECK(copy.tensor().data_ptr() == t.data_ptr());
  CHECK(copy.content_hash() == v.content_hash());
  CHECK(Value::image(t.clone()).content_hash() == v.content_hash());
  CHECK(Value::image(t + 1).content_hash() != v.content_hash());
  Value with = v.with_aux("extra", torch::ones({2}));
  CHECK(with.tensor().data_ptr() == t.data_ptr());
  CHECK(with.aux().count("extra") == 1);
  CHECK(v.aux().empty());
  CHECK_THROWS_AS(Value::image(torch::rand({1, 4, 8, 8})), Error);
  CHECK_THROWS_AS(Value::audio(torch::rand({1, 100}), 16000), Error);
  CHECK_THROWS_AS(Value::video(torch::rand({1, 2, 3, 4, 4}), 0), Error);
  CHECK(Value::audio(torch::zeros({1, 1, 10}), 8000).sample_rate() == 8000);
}

TEST_CASE("the execution cache keeps a byte budget over 50 parameter variants, evicting the least recent",
          "[executor][cache]") {
  test::register_test_stages();
  const int64_t floats = 32 * 1024;  // two outputs of 128 KiB each: 256 KiB an entry
  const size_t entry_bytes = 2 * floats * sizeof(float);
  GraphBuilder b;
  b.name("budget").cache_mb(1);
  b.stage("src", "t_source").param("size", floats).param("value", 0.0);
  b.output("y", "src.out");
  Pipeline p(b);
  REQUIRE(p.cache().budget() == size_t{1} << 20);
  for (int i = 0; i < 50; ++i) {
    p.set_param("src", "value", static_cast<double>(i));
    RunResult r = p.run();
    CHECK(r.outputs.at("y").tensor()[0].item<double>() == i);
    CHECK(p.cache().bytes() <= p.cache().budget());
    CHECK(p.cache().bytes() == p.cache().size() * entry_bytes);
  }
  CHECK(p.cache().size() == (size_t{1} << 20) / entry_bytes);
  // The most recent variants are still cached; the first ones were evicted.
  test::reset_run_counts();
  p.set_param("src", "value", 49.0);
  CHECK(p.run().record("src")->status == StageRecord::Status::Cached);
  p.set_param("src", "value", 0.0);
  CHECK(p.run().record("src")->status == StageRecord::Status::Ran);
  CHECK(test::run_count("src") == 1);
}

TEST_CASE("the cache budget comes from YAML and 0 keeps nothing; negative is a bad_setting", "[executor][cache]") {
  test::register_test_stages();
  const std::string yaml = "cache_mb: 0\nstages:\n  - id: src\n    type: t_source\noutputs: {y: src.out}\n";
  Pipeline p(parse_graph_yaml(yaml, "c.yaml"));
  CHECK(p.cache().budget() == 0);
  p.run();
  CHECK(p.cache().size() == 0);
  CHECK(p.run().record("src")->status == StageRecord::Status::Ran);
  try {
    parse_graph_yaml("cache_mb: -5\nstages: []\noutputs: {}\n", "c.yaml").build();
    FAIL("expected bad_setting");
  } catch (const ErrorList& e) {
    REQUIRE(!e.errors().empty());
    CHECK(e.errors()[0].code() == "bad_setting");
  }
}

TEST_CASE("a cache entry larger than the whole budget is not kept, and LRU order follows use", "[executor][cache]") {
  ExecutionCache cache(3000);
  auto entry = [](int64_t floats) { return PortValues{{"x", Value::tensor(at::zeros({floats}))}}; };
  cache.store(1, entry(250));  // 1000 bytes each
  cache.store(2, entry(250));
  cache.store(3, entry(250));
  CHECK(cache.find(1).has_value());  // 1 becomes the most recent; 2 is now the least
  cache.store(4, entry(250));
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.find(2).has_value());
  CHECK(cache.find(1).has_value());
  cache.store(5, entry(1000));  // 4000 bytes: over the budget, not kept
  CHECK_FALSE(cache.find(5).has_value());
  CHECK(cache.bytes() == 3000);
  cache.set_budget(1000);
  CHECK(cache.size() == 1);
}

TEST_CASE("set_param revalidates against the registry the graph was built with", "[executor]") {
  test::register_test_stages();
  StageRegistry own;
  StageInfo info = *StageRegistry::global().find("t_source");
  info.type = "t_private_source";
  own.add(info);
  GraphBuilder b;
  b.stage("src", "t_private_source").param("value", 1.0);
  b.output("y", "src.out");
  Pipeline p(b.build(own));
  p.set_param("src", "value", 3.0);
  CHECK(p.run().outputs.at("y").tensor()[0].item<double>() == 3.0);
  CHECK_THROWS_AS(p.set_param("src", "bogus", 1), ErrorList);
}
