// casebus: the one executable. Thin: parses the subcommand and hands over to engine/cli.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/cli/commands.h"

// jemalloc (engine/cli/CMakeLists.txt links it) runs with its defaults: huge pages as the
// system's THP mode gives them. Asking for them (`thp:always`) sped up the old restore, which
// parsed every case into ~2.8 KB of fresh heap (1M: 5.0 s instead of 6.2 s); the restore that
// keeps cases packed needs a quarter of that memory, and with huge pages it was slower (5M:
// 21.8 s against 13.2-15.4 s; direct compaction when free memory is fragmented). See
// bench/RESULTS.md. MALLOC_CONF=thp:always still asks for them.

namespace {

void Usage() {
  std::fputs(
      "casebus — a case engine for digital city management (数字城管)\n"
      "\n"
      "usage: casebus <command> [args]\n"
      "\n"
      "  serve [--config FILE] [--data DIR] [--endpoint tcp://127.0.0.1:7450] [--http 127.0.0.1:7470]\n"
      "        run the engine (SIGTERM: stop intake, commit what is queued, exit 0); HTTP serves\n"
      "        [--access FILE]   HTTP serves the API /v1/... (bearer tokens from the access file;\n"
      "        SIGHUP reloads it), /open311/v2/, /dashboard, /metrics (Prometheus), /healthz\n"
      "        [--checkpoint-every N]   write a checkpoint every N journal records while serving\n"
      "        (default 1000000; 0: only at a clean stop); a restart restores it and replays the rest\n"
      "  ledger rebuild [--verify] [--data DIR] [--config FILE]\n"
      "        recount the closure ledger from the journal; --verify only reports differences\n"
      "  audit verify [--data DIR]  recompute the journal's hash chain; the first broken link\n"
      "  check-config FILE         validate a city config; every problem with file:line\n"
      "  demo [--days 7] [--cases-per-day 1200] [--keep DIR]\n"
      "        a synthetic week of the sample city on a virtual clock, then closure tables\n"
      "  simulate --scenario FILE.jsonl [--config FILE] [--until ISO] [--json OUT]\n"
      "        replay timestamped commands on a virtual clock; deadlines, escalations, closure\n"
      "  token new --name N --role R [--department D]   a bearer token for the HTTP API and\n"
      "                            its access-file line (roles: operator dispatcher department\n"
      "                            leader admin reporter)\n"
      "  keygen                    a CURVE keypair (Z85) for the department gateway or a client\n"
      "  dept --department D --gateway EP --server-key PUB --key-file F ACTION\n"
      "        a department's console on the zmq gateway; ACTION: inbox [--wait S],\n"
      "        accept ID, resolve ID --evidence E, return ID --reason R, note ID --text T,\n"
      "        extend ID --hours H\n"
      "\n"
      "operator verbs (talk to a running server; --endpoint or $CASEBUS_ENDPOINT):\n"
      "  report --category C --grid G --source S [--lat --lon --urgency --asset --description --reporter]\n"
      "  register ID [--condition K]    reject ID --reason R      dispatch ID [--department D]\n"
      "  accept ID                      return ID --reason R      resolve ID --evidence E[,E..] [--note N]\n"
      "  verify ID (--pass | --fail --reason R)                   close ID\n"
      "  reopen ID --reason R           extend ID --hours H [--reason R]\n"
      "  approve-extension ID [--hours H]   deny-extension ID [--reason R]\n"
      "  suspend ID --reason R          resume ID                 merge ID --into ID2\n"
      "  void ID --reason R             note ID --text T\n"
      "  supervision-reply ID --text T  (a department's written answer to a 督办 record)\n"
      "  deadletter list|retry|drop [ID...] [--all] [--limit N]  (undeliverable work orders)\n"
      "  show ID                        list [--state S --department D --district C --overdue\n"
      "                                      --light red|yellow|green --min-level N --limit N]\n"
      "  status                         closure\n"
      "  metrics [--by department|district|street|category|class|source|day|district_class]\n"
      "          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json]   (closure rates, index, ranks)\n"
      "  report --month YYYY-MM [--format md|csv|html] [--out FILE]   (monthly 通报)\n"
      "  common: --actor NAME (default $USER), --request-id ID (default: random; reuse it to retry)\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  using namespace casebus::cli;
  if (cmd == "serve") return RunServe(args);
  if (cmd == "check-config") return RunCheckConfig(args);
  if (cmd == "demo") return RunDemo(args);
  if (cmd == "simulate") return RunSimulate(args);
  if (cmd == "dept") return RunDept(args);
  if (cmd == "keygen") return RunKeygen(args);
  if (cmd == "token") return RunToken(args);
  if (cmd == "metrics") return RunMetrics(args);
  if (cmd == "ledger") return RunLedger(args);
  if (cmd == "audit") return RunAudit(args);
  // `report --month` is the monthly report; `report --category ...` reports a case.
  if (cmd == "report" && std::any_of(args.begin(), args.end(), [](const std::string& a) {
        return a == "--month" || a.rfind("--month=", 0) == 0;
      }))
    return RunMonthlyReport(args);
  if (IsVerb(cmd)) return RunVerb(cmd, args);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    Usage();
    return 0;
  }
  std::fprintf(stderr, "casebus: unknown command '%s'\n\n", cmd.c_str());
  Usage();
  return 2;
}
