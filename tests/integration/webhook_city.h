#pragma once
// The sample city with every department on a webhook instead of a spool: for integration
// tests that run `casebus serve` against tests/support/flaky_webhook.py.

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace casebus::testing {

// Rewrites sample-city.yaml so department X posts to http://127.0.0.1:<port>/X, signed with
// the secret in secret_file; appends webhook_allow and the given `delivery:` block.
inline std::string WebhookCityYaml(const std::string& sample_path, int port,
                                   const std::string& secret_file, const std::string& delivery_yaml) {
  std::ifstream in(sample_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
  std::string yaml = std::regex_replace(
      text.str(), std::regex("spool:\n        directory: \"spool/([^\"]+)\""),
      "webhook:\n        url: \"" + base + "$1\"\n        secret_file: \"" + secret_file + "\"");
  yaml += "\nwebhook_allow:\n  - \"" + base + "\"\n" + delivery_yaml;
  return yaml;
}

}  // namespace casebus::testing
