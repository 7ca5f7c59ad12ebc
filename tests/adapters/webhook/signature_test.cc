// adapters/webhook: Standard Webhooks v1 signing and verification. The signing is pinned to the
// specification's published vector; the verifier is fed every way a delivery can be forged,
// stale, replayed or malformed, and must name the header at fault.

#include "adapters/webhook/signature.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace casebus::webhook {
namespace {

// The reference vector of the Standard Webhooks project: TestWebhookSign in
// standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (commit 449485ca). It was
// also recomputed independently with the OpenSSL command line:
//   key=$(printf %s MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p -c 100)
//   printf %s 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
//     openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64
//   => g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
constexpr std::string_view kVectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kVectorId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kVectorTimestamp = 1614265330;
constexpr std::string_view kVectorBody = R"({"test": 2432232314})";
constexpr std::string_view kVectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

// base64("casebus-webhook-test-secret-A-32") and "...-B-32": 32-byte keys.
constexpr std::string_view kSecretA = "whsec_Y2FzZWJ1cy13ZWJob29rLXRlc3Qtc2VjcmV0LUEtMzI=";
constexpr std::string_view kSecretB = "whsec_Y2FzZWJ1cy13ZWJob29rLXRlc3Qtc2VjcmV0LUItMzI=";

constexpr int64_t kNow = 1772413200;  // 2026-03-02T01:00:00Z
constexpr std::string_view kBody = R"({"type":"work_order.resolved","case_id":7})";

Secret MustParse(std::string_view text) {
  Result<Secret> secret = ParseSecret(text);
  EXPECT_TRUE(secret.has_value()) << secret.error().ToString();
  return secret.value();  // throws on error, which gtest reports as a failure
}

// "a2tr" is base64 of "kkk": n groups decode to 3n bytes.
std::string KeyText(int groups, std::string_view tail = "") {
  std::string text;
  for (int i = 0; i < groups; ++i) text += "a2tr";
  return text += tail;
}

// One delivery as it arrives: the three headers and the body.
struct Delivery {
  std::string id = "wo_7-1";
  std::string timestamp = std::to_string(kNow);
  std::string signature;
  std::string body = std::string(kBody);
};

Delivery Signed(std::string_view secret, std::string id = "wo_7-1", int64_t ts = kNow) {
  Delivery d;
  d.id = std::move(id);
  d.timestamp = std::to_string(ts);
  d.signature = Sign(MustParse(secret), d.id, ts, d.body);
  return d;
}

Status Verify(Verifier& v, const Delivery& d, int64_t now_s = kNow) {
  return v.Verify(d.id, d.timestamp, d.signature, d.body, now_s);
}

std::vector<Secret> Secrets(std::initializer_list<std::string_view> texts) {
  std::vector<Secret> out;
  for (std::string_view t : texts) out.push_back(MustParse(t));
  return out;
}

TEST(SignTest, MatchesThePublishedVector) {
  EXPECT_EQ(Sign(MustParse(kVectorSecret), kVectorId, kVectorTimestamp, kVectorBody),
            kVectorSignature);
  // The same key without the whsec_ prefix.
  EXPECT_EQ(Sign(MustParse(kVectorSecret.substr(6)), kVectorId, kVectorTimestamp, kVectorBody),
            kVectorSignature);
}

TEST(VerifierTest, AcceptsThePublishedVector) {
  Verifier v(Secrets({kVectorSecret}));
  Status s = v.Verify(kVectorId, std::to_string(kVectorTimestamp), kVectorSignature, kVectorBody,
                      kVectorTimestamp + 10);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(SignTest, SignatureHeaderHasOneEntryPerSecretInOrder) {
  const std::vector<Secret> secrets = Secrets({kSecretA, kSecretB});
  EXPECT_EQ(SignatureHeader(secrets, "m", 5, "b"),
            Sign(secrets[0], "m", 5, "b") + " " + Sign(secrets[1], "m", 5, "b"));
  EXPECT_NE(Sign(secrets[0], "m", 5, "b"), Sign(secrets[1], "m", 5, "b"));
  EXPECT_EQ(SignatureHeader({}, "m", 5, "b"), "");
}

TEST(VerifierTest, AcceptsItsOwnSignatures) {
  Verifier v(Secrets({kSecretA}));
  Status s = Verify(v, Signed(kSecretA));
  EXPECT_TRUE(s.ok()) << s.ToString();
  // An empty body is a body like any other.
  Delivery empty = Signed(kSecretA, "wo_7-2");
  empty.body.clear();
  empty.signature = Sign(MustParse(kSecretA), empty.id, kNow, "");
  s = Verify(v, empty);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

struct Tampering {
  const char* what;
  void (*apply)(Delivery&);
  std::string_view header;  // the header the error must name
};

const Tampering kTamperings[] = {
    {"flipped body byte", [](Delivery& d) { d.body[3] ^= 0x01; }, "webhook-signature"},
    {"flipped signature char",
     [](Delivery& d) { d.signature[10] = d.signature[10] == 'A' ? 'B' : 'A'; },
     "webhook-signature"},
    {"different id", [](Delivery& d) { d.id = "wo_7-9"; }, "webhook-signature"},
    {"different timestamp", [](Delivery& d) { d.timestamp = std::to_string(kNow - 1); },
     "webhook-signature"},
    {"wrong secret",
     [](Delivery& d) { d.signature = Sign(MustParse(kSecretB), d.id, kNow, d.body); },
     "webhook-signature"},
    {"missing id", [](Delivery& d) { d.id.clear(); }, "webhook-id"},
    {"missing timestamp", [](Delivery& d) { d.timestamp.clear(); }, "webhook-timestamp"},
    {"missing signature", [](Delivery& d) { d.signature.clear(); }, "webhook-signature"},
    {"timestamp with a letter", [](Delivery& d) { d.timestamp[4] = 'a'; }, "webhook-timestamp"},
    {"negative timestamp", [](Delivery& d) { d.timestamp = "-" + d.timestamp; },
     "webhook-timestamp"},
    {"timestamp with a space", [](Delivery& d) { d.timestamp = " " + d.timestamp; },
     "webhook-timestamp"},
    {"timestamp past int64", [](Delivery& d) { d.timestamp = "99999999999999999999"; },
     "webhook-timestamp"},
    {"id with a space", [](Delivery& d) { d.id = "wo 7"; }, "webhook-id"},
    {"id with a control byte", [](Delivery& d) { d.id = "wo_7\n"; }, "webhook-id"},
    {"id of 257 bytes", [](Delivery& d) { d.id = std::string(257, 'x'); }, "webhook-id"},
    {"v2 only", [](Delivery& d) { d.signature = "v2," + d.signature.substr(3); },
     "webhook-signature"},
    {"empty signature list", [](Delivery& d) { d.signature = "   "; }, "webhook-signature"},
    {"v1 with no signature", [](Delivery& d) { d.signature = "v1,"; }, "webhook-signature"},
    {"entry without a version", [](Delivery& d) { d.signature = d.signature.substr(3); },
     "webhook-signature"},
};

TEST(VerifierTest, RefusesEveryTamperingNamingTheHeader) {
  for (const Tampering& t : kTamperings) {
    SCOPED_TRACE(t.what);
    Verifier v(Secrets({kSecretA}));
    Delivery d = Signed(kSecretA);
    t.apply(d);
    Status s = Verify(v, d);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.field(), t.header);
    EXPECT_TRUE(s.message().starts_with(std::string(t.header) + ": ")) << s.message();
    EXPECT_EQ(v.remembered_ids(), 0u);
  }
}

TEST(VerifierTest, AcceptsAnIdOf256PrintableBytes) {
  Verifier v(Secrets({kSecretA}));
  Status s = Verify(v, Signed(kSecretA, std::string(256, '~')));
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(VerifierTest, RefusesTimestampsOutsideTheTolerance) {
  Verifier v(Secrets({kSecretA}));
  Status s = Verify(v, Signed(kSecretA, "past-301", kNow - 301));
  EXPECT_EQ(s.field(), "webhook-timestamp");
  EXPECT_EQ(s.message(),
            "webhook-timestamp: expired, 301 s older than now; the tolerance is 300 s");
  s = Verify(v, Signed(kSecretA, "future-301", kNow + 301));
  EXPECT_EQ(s.message(),
            "webhook-timestamp: from the future, 301 s ahead of now; the tolerance is 300 s");

  for (int64_t offset : {-300, -299, 299, 300}) {
    Status ok = Verify(v, Signed(kSecretA, "at" + std::to_string(offset), kNow + offset));
    EXPECT_TRUE(ok.ok()) << offset << ": " << ok.ToString();
  }
}

TEST(VerifierTest, ToleranceIsConfigurable) {
  Verifier v(Secrets({kSecretA}), {.tolerance_s = 10});
  EXPECT_TRUE(Verify(v, Signed(kSecretA, "a", kNow - 10)).ok());
  EXPECT_EQ(Verify(v, Signed(kSecretA, "b", kNow - 11)).message(),
            "webhook-timestamp: expired, 11 s older than now; the tolerance is 10 s");
}

TEST(VerifierTest, RefusesAReplayUntilTheTimestampHasExpired) {
  Verifier v(Secrets({kSecretA}));
  const Delivery d = Signed(kSecretA, "wo_7-1", kNow);
  ASSERT_TRUE(Verify(v, d).ok());

  Status again = Verify(v, d, kNow + 1);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(),
            "webhook-id: \"wo_7-1\" was already accepted; refusing a replayed delivery");
  // At the last second the timestamp passes, the id is still remembered.
  EXPECT_EQ(Verify(v, d, kNow + 300).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(v.remembered_ids(), 1u);

  // A second later the copy is refused as expired, and the id is dropped on the next Verify.
  Status late = Verify(v, d, kNow + 301);
  EXPECT_EQ(late.field(), "webhook-timestamp");
  EXPECT_NE(late.message().find("expired"), std::string::npos);
  ASSERT_TRUE(Verify(v, Signed(kSecretA, "wo_8-1", kNow + 301), kNow + 301).ok());
  EXPECT_EQ(v.remembered_ids(), 1u);  // wo_8-1 only
  // wo_7-1 is forgotten: a fresh signature for it is accepted again.
  EXPECT_TRUE(Verify(v, Signed(kSecretA, "wo_7-1", kNow + 301), kNow + 301).ok());
}

TEST(VerifierTest, ReplayWindowRefusesASendersRedeliveryOfAProcessedMessage) {
  Verifier v(Secrets({kSecretA}), {.replay_window_s = 3600});
  ASSERT_TRUE(Verify(v, Signed(kSecretA, "wo_7-1", kNow)).ok());
  // The sender retries half an hour later: same id, new timestamp and signature.
  const Delivery retry = Signed(kSecretA, "wo_7-1", kNow + 1800);
  EXPECT_TRUE(v.Check(retry.id, retry.timestamp, retry.signature, retry.body, kNow + 1800).code() ==
              StatusCode::kAlreadyExists);
  EXPECT_EQ(Verify(v, retry, kNow + 1800).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Verify(v, Signed(kSecretA, "wo_7-1", kNow + 3600), kNow + 3600).code(),
            StatusCode::kAlreadyExists);
  EXPECT_TRUE(Verify(v, Signed(kSecretA, "wo_7-1", kNow + 3601), kNow + 3601).ok());
}

TEST(VerifierTest, CheckDoesNotRecord) {
  Verifier v(Secrets({kSecretA}));
  const Delivery d = Signed(kSecretA);
  EXPECT_TRUE(v.Check(d.id, d.timestamp, d.signature, d.body, kNow).ok());
  EXPECT_TRUE(v.Check(d.id, d.timestamp, d.signature, d.body, kNow).ok());
  EXPECT_EQ(v.remembered_ids(), 0u);
  EXPECT_TRUE(Verify(v, d).ok());
  EXPECT_EQ(v.Check(d.id, d.timestamp, d.signature, d.body, kNow).code(),
            StatusCode::kAlreadyExists);
  // Check still verifies the signature.
  EXPECT_EQ(v.Check(d.id, d.timestamp, d.signature, "{}", kNow).field(), "webhook-signature");
}

TEST(VerifierTest, ForgetLetsTheRedeliveryOfAFailedMessageThrough) {
  Verifier v(Secrets({kSecretA}));
  const Delivery d = Signed(kSecretA);
  ASSERT_TRUE(Verify(v, d).ok());
  v.Forget(d.id);
  v.Forget("never-seen");
  EXPECT_EQ(v.remembered_ids(), 0u);
  EXPECT_TRUE(Verify(v, Signed(kSecretA, d.id, kNow + 5), kNow + 5).ok());
}

TEST(VerifierTest, AtTheCapRefusesNewIdsUntilOldOnesExpire) {
  Verifier v(Secrets({kSecretA}), {.max_remembered_ids = 2});
  ASSERT_TRUE(Verify(v, Signed(kSecretA, "a")).ok());
  ASSERT_TRUE(Verify(v, Signed(kSecretA, "b")).ok());
  Status full = Verify(v, Signed(kSecretA, "c"));
  EXPECT_EQ(full.code(), StatusCode::kUnavailable);
  EXPECT_EQ(full.message(),
            "webhook-id: the replay cache is full (2 ids); retry after older ids expire");
  // Nothing is evicted early: "a" is still refused as a replay.
  EXPECT_EQ(Verify(v, Signed(kSecretA, "a")).code(), StatusCode::kAlreadyExists);
  // Once "a" and "b" expire, "c" is let in.
  EXPECT_TRUE(Verify(v, Signed(kSecretA, "c", kNow + 301), kNow + 301).ok());
  EXPECT_EQ(v.remembered_ids(), 1u);
}

TEST(VerifierTest, ConcurrentCopiesAreAcceptedExactlyOnce) {
  Verifier v(Secrets({kSecretA}));
  const Delivery d = Signed(kSecretA);
  std::atomic<int> accepted{0}, replayed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Status s = Verify(v, d);
      if (s.ok()) ++accepted;
      if (s.code() == StatusCode::kAlreadyExists) ++replayed;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(replayed.load(), 7);
}

TEST(VerifierTest, RotationAcceptsAnyMatchingEntry) {
  const std::vector<Secret> old_and_new = Secrets({kSecretB, kSecretA});
  Delivery d = Signed(kSecretA);
  d.signature = SignatureHeader(old_and_new, d.id, kNow, d.body);
  Verifier holds_new(Secrets({kSecretA}));  // only the second entry matches
  Status s = Verify(holds_new, d);
  EXPECT_TRUE(s.ok()) << s.ToString();

  // Unknown versions and stray spaces around the matching entry are skipped.
  Delivery mixed = Signed(kSecretA, "wo_7-2");
  mixed.signature =
      "v2,abc  " + mixed.signature + " v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
  s = Verify(holds_new, mixed);
  EXPECT_TRUE(s.ok()) << s.ToString();

  Verifier holds_both(Secrets({kSecretB, kSecretA}));
  EXPECT_TRUE(Verify(holds_both, Signed(kSecretA, "by-a")).ok());
  EXPECT_TRUE(Verify(holds_both, Signed(kSecretB, "by-b")).ok());
  EXPECT_FALSE(Verify(holds_both, Signed(kVectorSecret, "by-other")).ok());
}

TEST(VerifierTest, WithoutSecretsRefusesEverything) {
  Verifier v({});
  EXPECT_EQ(Verify(v, Signed(kSecretA)).code(), StatusCode::kFailedPrecondition);
}

TEST(ParseSecretTest, AcceptsPrefixedBareAndUnpaddedForms) {
  const std::string key = MustParse(kSecretA).key();
  EXPECT_EQ(key, "casebus-webhook-test-secret-A-32");
  EXPECT_EQ(MustParse(kSecretA.substr(6)).key(), key);
  EXPECT_EQ(MustParse(kSecretA.substr(0, kSecretA.size() - 1)).key(), key);  // no '='
  EXPECT_EQ(MustParse(KeyText(8)).key(), std::string(24, 'k'));
  EXPECT_EQ(MustParse(KeyText(21, "aw==")).key(), std::string(64, 'k'));
  EXPECT_EQ(MustParse(KeyText(21, "aw")).key(), std::string(64, 'k'));
}

TEST(ParseSecretTest, SaysWhatIsWrongWithoutQuotingTheSecret) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "webhook secret is empty"},
      {"whsec_", "webhook secret has nothing after the whsec_ prefix"},
      {"whsec_" + KeyText(7, "a2s="),
       "webhook secret decodes to 23 bytes; a key must be 24 to 64 bytes"},
      {KeyText(5, "aw=="), "webhook secret decodes to 16 bytes; a key must be 24 to 64 bytes"},
      {KeyText(21, "a2s="), "webhook secret decodes to 65 bytes; a key must be 24 to 64 bytes"},
      {"whsec_" + KeyText(4) + "-_" + KeyText(4),
       "webhook secret is not base64: the character at offset 22 is outside the standard base64 "
       "alphabet"},
      {KeyText(8) + " ",
       "webhook secret is not base64: the character at offset 32 is outside the standard base64 "
       "alphabet"},
      {KeyText(8, "a"),
       "webhook secret is not base64: 33 characters after any whsec_ prefix is not a valid length "
       "or padding"},
      {KeyText(8, "a2s"),  // valid unpadded, but...
       ""},
      {KeyText(8, "a2s=="),
       "webhook secret is not base64: 37 characters after any whsec_ prefix is not a valid length "
       "or padding"},
      {KeyText(8, "a2==="),
       "webhook secret is not base64: 37 characters after any whsec_ prefix is not a valid length "
       "or padding"},
      {"====",
       "webhook secret is not base64: 4 characters after any whsec_ prefix is not a valid "
       "length or padding"},
      {KeyText(4, "a=") + KeyText(4),
       "webhook secret is not base64: the character at offset 17 is outside the standard base64 "
       "alphabet"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    Result<Secret> secret = ParseSecret(c.text);
    if (c.message.empty()) {
      EXPECT_TRUE(secret.has_value());
      continue;
    }
    ASSERT_FALSE(secret.has_value());
    EXPECT_EQ(secret.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(secret.error().field(), "secret");
    EXPECT_EQ(secret.error().message(), c.message);
    if (c.text.size() > 6) {
      EXPECT_EQ(secret.error().message().find(c.text.substr(6, 8)), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace casebus::webhook
