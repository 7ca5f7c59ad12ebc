#pragma once
// The `casebus` subcommands. Each returns the process exit code: 0 ok, 1 the command failed,
// 2 bad usage.

#include <memory>
#include <string>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"

namespace casebus::cli {

using Args = std::vector<std::string>;

int RunServe(const Args& args);
int RunCheckConfig(const Args& args);
int RunDemo(const Args& args);
int RunSimulate(const Args& args);
int RunDept(const Args& args);    // a department's console on the zmq gateway (dept.cc)
int RunToken(const Args& args);   // token new: a bearer token for the HTTP API
int RunKeygen(const Args& args);  // a CURVE keypair
// metrics.cc: closure figures from a running server, and the ledger's proof (offline).
int RunMetrics(const Args& args);
int RunMonthlyReport(const Args& args);  // `report --month YYYY-MM`
int RunLedger(const Args& args);
int RunAudit(const Args& args);   // `audit verify`: the journal's hash chain
// report, register, dispatch, accept, ... show, list, status, closure.
int RunVerb(const std::string& verb, const Args& args);
bool IsVerb(const std::string& verb);

// The config at `path`, or the embedded sample city when path is empty.
Result<std::shared_ptr<const v1::CityConfig>> LoadConfigOrSample(const std::string& path);
std::string_view EmbeddedSampleCity();

}  // namespace casebus::cli
