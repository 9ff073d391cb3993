// Caps at the node (node/site_operations.h, node/domain_store.h): the cohort
// taken at screening, randomization refused when the participant's cohort has
// no allowance left, arms closed at the node when their allowance is used up
// (minimization chooses among the open arms, list designs skip the closed
// arm's slots), the same for an arm the study's design closes (Arm::closed,
// an amendment), and refusals that never name an arm.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

#include "node/site_operations.h"
#include "shared/offline_minimization.h"
#include "sync/seeded_source.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using node::Actor;
using nlohmann::json;
using shared::CapScope;
using test::kCoordinator;

namespace {

// A study file of the examples with extra caps, written for one test.
struct CappedSite {
  test::TempDir tmp;
  std::unique_ptr<test::NodeFixture> fixture;
  std::unique_ptr<node::NodeState> state;
  std::unique_ptr<node::SiteOperations> ops;

  // `closed_arms` closed as `closed` says (docs/study-config.md, "arms").
  CappedSite(const std::string& example, const json& caps, test::NodeFixtureOptions o = {},
             const std::vector<std::string>& closed_arms = {}, const json& closed = true) {
    auto doc = json::parse(test::read_file(test::source_path("packaging/examples/" + example)));
    for (const auto& c : caps) doc["caps"].push_back(c);
    for (auto& a : doc["arms"])
      if (std::find(closed_arms.begin(), closed_arms.end(), a["id"].get<std::string>()) != closed_arms.end())
        a["closed"] = closed;
    auto path = tmp / "study.json";
    test::write_file(path, doc.dump(2));
    o.study_file = path.string();
    if (example == "study-minimization.json") o.site = "301";
    fixture = std::make_unique<test::NodeFixture>(tmp / "node", o);
    state = fixture->open();
    ops = std::make_unique<node::SiteOperations>(*state);
  }

  std::vector<std::string> yes() const {
    return std::vector<std::string>(state->domain().study()->eligibility.size(), "yes");
  }
  node::PasswordCheck sig() {
    return node::check_password(node::find_user(state->log(), kCoordinator.user), kCoordinator.user,
                                test::kFixturePassword);
  }
  std::map<std::string, std::string> factors() const {
    if (state->domain().study()->randomization.method == shared::Method::minimization)
      return {{"age_group", "under_65"}, {"hoehn_yahr", "1-1.5"}};
    return {{"diabetes", "no"}};
  }
  // The participant's factors as the node holds them (with site and country).
  std::map<std::string, std::string> factors_held() const {
    auto f = factors();
    f["site"] = state->enrollment().site_id;
    f["country"] = state->domain().study()->find_site(f["site"])->country;
    return f;
  }
  static shared::Days today() {
    using namespace std::chrono;
    return shared::day_of_millis(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
  }
  std::string screen(const std::string& cohort = "", std::map<std::string, std::string> with = {}) {
    auto f = factors();
    for (const auto& [k, v] : with) f[k] = v;
    auto r = ops->screen(kCoordinator, {f, yes(), "", cohort});
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r->participant.number;
  }
  shared::Result<node::OperationOutcome> randomize(const std::string& cohort = "") {
    return ops->randomize(kCoordinator, screen(cohort), sig());
  }
  json event(std::uint64_t seq) {
    auto e = sync::parse_event(*state->log().record(seq));
    return json::parse(crypto::to_string(e->body.payload));
  }
  // The hub's next grant.cap_allowance, applied as a sync would.
  void grant(CapScope scope, const std::string& id, std::uint64_t granted) {
    shared::CapAllowanceGrant g;
    g.allowances.push_back({scope, id, granted});
    REQUIRE(fixture->send(*state, std::string(shared::kGrantCapAllowanceDirective), json(g)).ok());
  }
};

bool names_an_arm(const std::string& message, const shared::Study& s) {
  for (const auto& a : s.arms)
    if (message.find("'" + a.id + "'") != std::string::npos || message.find(a.name) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("screening takes one of the study's cohorts when it defines cohorts and records it in the event") {
  CappedSite s("study-minimization.json", json::array());
  auto missing = s.ops->screen(kCoordinator, {s.factors(), s.yes(), ""});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == shared::Errc::invalid_input);
  CHECK(missing.error().message == "cohort: required, this study enrolls every participant in a cohort; use one of "
                                   "main, pk");
  auto unknown = s.ops->screen(kCoordinator, {s.factors(), s.yes(), "", "pd"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message == "cohort: 'pd' is not a cohort of this study; use one of main, pk");
  auto ok = s.ops->screen(kCoordinator, {s.factors(), s.yes(), "", "pk"});
  REQUIRE(ok.ok());
  CHECK(ok->participant.cohort == "pk");
  CHECK(s.state->domain().find_participant(ok->participant.number)->cohort == "pk");
  CHECK(s.event(ok->event_seq)["cohort"] == "pk");
  // A screen failure may leave the cohort out.
  auto answers = s.yes();
  answers[0] = "no";
  auto failed = s.ops->screen(kCoordinator, {s.factors(), answers, "withdrew consent"});
  REQUIRE_MESSAGE(failed.ok(), (failed.ok() ? "" : failed.error().message));
  CHECK_FALSE(s.event(failed->event_seq).contains("cohort"));
}

TEST_CASE("a study without cohorts refuses a cohort at screening and records none") {
  CappedSite s("study-blocks.json", json::array());
  auto refused = s.ops->screen(kCoordinator, {s.factors(), s.yes(), "", "pk"});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == "cohort: this study defines no cohorts; leave cohort out");
  auto ok = s.ops->screen(kCoordinator, {s.factors(), s.yes(), ""});
  REQUIRE(ok.ok());
  CHECK_FALSE(s.event(ok->event_seq).contains("cohort"));
}

TEST_CASE("a cohort with no allowance left at the node refuses randomization, naming the cohort and no arm") {
  test::NodeFixtureOptions o;
  o.cap_allowance = 2;
  o.kits_per_type = 8;
  CappedSite s("study-minimization.json", json::array(), o);
  REQUIRE(s.state->domain().allowance_left(CapScope::cohort, "pk") == 2);
  CHECK_FALSE(s.state->domain().allowance_left(CapScope::cohort, "main").has_value());  // not capped
  REQUIRE(s.randomize("pk").ok());
  REQUIRE(s.randomize("pk").ok());
  CHECK(s.state->domain().allowance_left(CapScope::cohort, "pk") == 0);
  auto number = s.screen("pk");
  const auto last = s.state->log().last_seq();
  auto refused = s.ops->randomize(kCoordinator, number, s.sig());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::exhausted);
  CHECK(refused.error().message ==
        "cohort 'pk' has no enrollment place left at this node, so participant " + number +
            " cannot be randomized now; nothing was changed; sync with the hub to receive more places, and if none "
            "come the cohort is full: ask the study team");
  CHECK_FALSE(names_an_arm(refused.error().message, *s.state->domain().study()));
  CHECK(s.state->log().last_seq() == last);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
  // Another cohort still randomizes; a top-up from the hub reopens the capped one.
  CHECK(s.randomize("main").ok());
  s.grant(CapScope::cohort, "pk", 3);
  CHECK(s.ops->randomize(kCoordinator, number, s.sig()).ok());
}

TEST_CASE("minimization chooses among the arms open at the node and the decision replays with them") {
  test::NodeFixtureOptions o;
  o.cap_allowance = 1;
  o.kits_per_type = 10;
  CappedSite s("study-minimization.json", json::array({{{"scope", "arm"}, {"arm", "H"}, {"limit", 100}}}), o);
  const auto& study = *s.state->domain().study();
  auto config = shared::minimization_config(study).value();
  std::size_t in_h = 0;
  std::optional<shared::OfflineDecisionRecord> after_close;
  for (int i = 0; i < 8; ++i) {
    const bool closed = !s.state->domain().arm_open("H", s.factors(), s.today());
    auto r = s.randomize("main");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    in_h += r->participant.arm == "H";
    if (closed) {
      CHECK(r->participant.arm != "H");
      after_close = r->participant.decision.get<shared::OfflineDecisionRecord>();
    }
  }
  CHECK(in_h == 1);  // the allowance of one, used; then H is closed here
  REQUIRE(after_close);
  // The closed arm travels in the record (a null score), so the hub replays with the node's open arms.
  CHECK(shared::open_arms_of(*after_close) == std::vector<bool>{false, true, true});
}

TEST_CASE("with every arm closed at the node minimization refuses without naming an arm") {
  test::NodeFixtureOptions o;
  o.cap_allowance = 1;
  o.kits_per_type = 10;
  CappedSite s("study-minimization.json",
               json::array({{{"scope", "arm"}, {"arm", "H"}, {"limit", 50}},
                            {{"scope", "arm"}, {"arm", "L"}, {"limit", 50}},
                            {{"scope", "arm"}, {"arm", "P"}, {"limit", 50}}}),
               o);
  for (int i = 0; i < 3; ++i) REQUIRE(s.randomize("main").ok());
  auto before = s.state->domain().stream()->decisions;
  auto refused = s.randomize("main");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::exhausted);
  CHECK(refused.error().message.find("no treatment group can take another participant at this node until it syncs") ==
        0);
  CHECK_FALSE(names_an_arm(refused.error().message, *s.state->domain().study()));
  CHECK(s.state->domain().stream()->decisions == before);
}

TEST_CASE("a list design skips the slots of an arm closed at the node and uses them once it reopens") {
  test::NodeFixtureOptions o;
  o.cap_allowance = 1;
  o.kits_per_type = 12;
  o.slots_per_stratum = 12;
  CappedSite s("study-blocks.json", json::array({{{"scope", "arm"}, {"arm", "B"}, {"limit", 40}}}), o);
  auto stratum = static_cast<std::uint32_t>(*s.state->domain().strata()->index_of({{"site", "101"}, {"diabetes", "no"}}));
  std::vector<std::uint32_t> used;
  std::size_t in_b = 0;
  std::optional<shared::Error> refusal;
  for (int i = 0; i < 20 && !refusal; ++i) {
    auto r = s.randomize();
    if (!r) {
      refusal = r.error();
      break;
    }
    used.push_back(r->participant.slot);
    in_b += r->participant.arm == "B";
  }
  CHECK(in_b == 1);
  // Every A slot was used in list order, the B slots after the first B skipped and still free.
  REQUIRE(refusal);
  CHECK(refusal->message == "no randomization slots left at this node for stratum site=101;diabetes=no; nothing "
                            "was changed; sync with the hub to receive more slots");
  CHECK(std::is_sorted(used.begin(), used.end()));
  const auto free = s.state->domain().free_slots(stratum);
  CHECK(free > 0);
  CHECK(free + used.size() >= 12);
  // The hub's top-up of B reopens the arm: the first skipped slot is used next.
  s.grant(CapScope::arm, "B", 2);
  const auto* next = s.state->domain().next_open_slot(stratum, s.factors(), s.today());
  REQUIRE(next);
  CHECK(next->arm == "B");
  auto r = s.randomize();
  REQUIRE(r.ok());
  CHECK(r->participant.slot == next->slot);
  CHECK(r->participant.slot < used.back());
}

TEST_CASE("minimization leaves an arm the study version closes out of the candidates, and the record says so") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 12;
  CappedSite s("study-minimization.json", json::array(), o, {"P"});
  CHECK_FALSE(s.state->domain().arm_open("P", s.factors(), s.today()));
  CHECK(s.state->domain().arm_open("H", s.factors(), s.today()));
  std::map<std::string, std::size_t> arms;
  for (int i = 0; i < 10; ++i) {
    auto r = s.randomize("main");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    ++arms[r->participant.arm];
    // The closed arm scores +inf (null) in the record: the hub replays with the node's open arms.
    auto record = r->participant.decision.get<shared::OfflineDecisionRecord>();
    CHECK(shared::open_arms_of(record) == std::vector<bool>{true, true, false});
  }
  CHECK(arms.count("P") == 0);
  CHECK(arms["H"] > 0);
  CHECK(arms["L"] > 0);
}

TEST_CASE("a list design skips the slots of an arm the study version closes, and blocks stay whole") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 12;
  o.slots_per_stratum = 12;
  CappedSite s("study-blocks.json", json::array(), o, {"B"});
  auto stratum = static_cast<std::uint32_t>(*s.state->domain().strata()->index_of({{"site", "101"}, {"diabetes", "no"}}));
  std::size_t randomized = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = s.randomize();
    if (!r) {
      CHECK(r.error().message == "no randomization slots left at this node for stratum site=101;diabetes=no; "
                                 "nothing was changed; sync with the hub to receive more slots");
      break;
    }
    CHECK(r->participant.arm == "A");
    ++randomized;
  }
  // The node holds whole 1:1 blocks: every A slot was used, every B slot stays free.
  CHECK(randomized > 0);
  CHECK(s.state->domain().free_slots(stratum) == randomized);
}

TEST_CASE("an arm closed for some strata only: a list design skips its slots there, and allocates it elsewhere") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 16;
  o.slots_per_stratum = 12;
  CappedSite s("study-blocks.json", json::array(), o, {"B"}, {{"strata", {{{"diabetes", "yes"}}}}});
  const auto today = CappedSite::today();
  auto with = [&](const std::string& diabetes) {
    auto f = s.factors_held();
    f["diabetes"] = diabetes;
    return f;
  };
  CHECK_FALSE(s.state->domain().arm_open("B", with("yes"), today));
  CHECK(s.state->domain().arm_open("B", with("no"), today));
  CHECK(s.state->domain().arm_open("A", with("yes"), today));
  std::map<std::string, std::size_t> yes, no;
  for (int i = 0; i < 6; ++i) {
    auto r = s.ops->randomize(kCoordinator, s.screen("", {{"diabetes", "yes"}}), s.sig());
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    ++yes[r->participant.arm];
    auto n = s.ops->randomize(kCoordinator, s.screen("", {{"diabetes", "no"}}), s.sig());
    REQUIRE_MESSAGE(n.ok(), (n.ok() ? "" : n.error().message));
    ++no[n->participant.arm];
  }
  CHECK(yes["A"] == 6);
  CHECK(yes.count("B") == 0);
  CHECK(no["B"] >= 1);  // the blocks of 4 or 6 (1:1) where the arm is open
  CHECK(no["A"] + no["B"] == 6);
}

TEST_CASE("an arm closed from a date is open before it and closed on and after it, by the node's date") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 12;
  CappedSite s("study-minimization.json", json::array(), o, {"P"}, {{"from", "2027-03-01"}});
  const auto day = [](const char* d) { return *shared::parse_date(d); };
  CHECK(s.state->domain().arm_open("P", s.factors_held(), day("2027-02-28")));
  CHECK_FALSE(s.state->domain().arm_open("P", s.factors_held(), day("2027-03-01")));
  CHECK_FALSE(s.state->domain().arm_open("P", s.factors_held(), day("2031-01-01")));
  // Combined with strata: only a matching participant, only from the date.
  CappedSite both("study-minimization.json", json::array(), o, {"P"},
                  {{"from", "2027-03-01"}, {"strata", {{{"age_group", "65_or_over"}}}}});
  auto older = both.factors_held();
  older["age_group"] = "65_or_over";
  CHECK_FALSE(both.state->domain().arm_open("P", older, day("2027-03-01")));
  CHECK(both.state->domain().arm_open("P", older, day("2027-02-28")));
  CHECK(both.state->domain().arm_open("P", both.factors_held(), day("2027-03-01")));
}
