#include "node/site_operations.h"

#include <doctest/doctest.h>

#include <set>

#include "crypto/deterministic_stream.h"
#include "crypto/password.h"
#include "crypto/seal.h"
#include "shared/civil_date.h"
#include "shared/offline_minimization.h"
#include "tests/support/node_fixture.h"
#include "tests/support/test_support.h"

using namespace irt;
using node::Actor;
using node::SiteOperations;
using test::kCoordinator;
using test::kInvestigator;
using test::kNurse;
using test::kPharmacist;
using nlohmann::json;

namespace {

// V3 dispensed while V2 is neither done nor missed: out of order, with a reason.
constexpr const char* kV3First = "V2 postponed";

const std::string kPassword = test::kFixturePassword;

struct Site {
  test::TempDir tmp;
  test::NodeFixture fixture;
  std::unique_ptr<node::NodeState> state;
  std::int64_t now = sync::system_millis();
  SiteOperations ops;

  explicit Site(test::NodeFixtureOptions o = {})
      : fixture(tmp / "node", std::move(o)), state(fixture.open()), ops(*state, [this] { return now; }) {}

  std::vector<std::string> yes() const {
    return std::vector<std::string>(state->domain().study()->eligibility.size(), "yes");
  }
  std::string screen(const std::string& diabetes = "no") {
    auto r = ops.screen(kCoordinator, {{{"diabetes", diabetes}}, yes(), ""});
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r->participant.number;
  }
  node::OperationOutcome randomized(const std::string& diabetes = "no") {
    auto number = screen(diabetes);
    auto r = ops.randomize(kCoordinator, number, sig(kCoordinator));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return *r;
  }
  json event(std::uint64_t seq) {
    auto rec = state->log().record(seq);
    auto e = sync::parse_event(*rec);
    return json::parse(crypto::to_string(e->body.payload));
  }
  std::string event_type(std::uint64_t seq) {
    auto e = sync::parse_event(*state->log().record(seq));
    return e->body.type;
  }
  void advance_days(int days) { now += std::int64_t{days} * 86400000; }
  // The caller's half of an e-signature: the password checked against the roster.
  node::PasswordCheck sig(const Actor& a, const std::string& password = kPassword) {
    return node::check_password(node::find_user(state->log(), a.user), a.user, password);
  }

  const shared::Study& study() const { return *state->domain().study(); }
  std::size_t dispensable_of(const std::string& arm) const {
    std::size_t n = 0;
    for (const auto& [number, k] : state->domain().kits())
      n += study().find_kit_type(k.kit_type)->arm == arm &&
           node::dispensable(k, ops.today(), study().supply.do_not_dispense_days);
    return n;
  }
  // The pharmacist quarantines the arm's dispensable kits until `keep` are left.
  void leave_dispensable(const std::string& arm, std::size_t keep) {
    std::vector<std::string> stock;
    for (const auto& [number, k] : state->domain().kits())
      if (study().find_kit_type(k.kit_type)->arm == arm &&
          node::dispensable(k, ops.today(), study().supply.do_not_dispense_days))
        stock.push_back(number);
    for (std::size_t i = keep; i < stock.size(); ++i)
      REQUIRE(ops.quarantine(kPharmacist, stock[i], "fridge at 31 C for 3 h", 31.0).ok());
    REQUIRE(dispensable_of(arm) == keep);
  }
  void receive_pending() {
    std::vector<node::KitReceipt> receipts;
    for (const auto& k : fixture.pending_shipment().kits) receipts.push_back({k.kit_number, "received"});
    REQUIRE(ops.receive_shipment(kCoordinator, fixture.pending_shipment().shipment_id, receipts, {}).ok());
  }
  // Randomized participants, one of arm A and one of arm B.
  std::pair<node::OperationOutcome, node::OperationOutcome> one_per_arm() {
    std::optional<node::OperationOutcome> a, b;
    for (int i = 0; i < 8 && !(a && b); ++i) {
      auto o = randomized();
      (o.participant.arm == "A" ? a : b) = o;
    }
    REQUIRE((a && b));
    return {*a, *b};
  }
  // Screens and randomizes until a randomization is refused; the refused participant and the refusal.
  std::pair<std::string, shared::Error> refused_randomization(const std::string& diabetes = "no") {
    for (int i = 0; i < 12; ++i) {
      auto number = screen(diabetes);
      auto r = ops.randomize(kCoordinator, number, sig(kCoordinator));
      if (!r) return {number, r.error()};
    }
    FAIL("no randomization was refused");
    return {};
  }
};

// A message with the participant's own identifiers replaced, to compare refusals across participants.
std::string without(std::string message, const std::vector<std::string>& own) {
  for (const auto& id : own)
    for (auto at = message.find(id); at != std::string::npos; at = message.find(id)) message.replace(at, id.size(), "#");
  return message;
}

const std::string kShortageTail = "; nothing was changed; the shortage is recorded and the supply team is alerted at the next sync";

}  // namespace

TEST_CASE("screening hands out the node's participant numbers in order and records an event") {
  Site s;
  auto r1 = s.ops.screen(kCoordinator, {{{"diabetes", "yes"}}, s.yes(), ""});
  auto r2 = s.ops.screen(kCoordinator, {{{"diabetes", "no"}}, s.yes(), ""});
  REQUIRE(r1.ok());
  REQUIRE(r2.ok());
  CHECK(r1->participant.number == "101-001");
  CHECK(r2->participant.number == "101-002");
  CHECK(r1->participant.factors.at("site") == "101");
  CHECK(r1->participant.factors.at("country") == "FR");
  CHECK(s.event_type(r1->event_seq) == "participant.screened");
  CHECK(s.event(r1->event_seq)["participant"] == "101-001");
}

TEST_CASE("a stratification value the study does not define is refused and uses no number") {
  Site s;
  auto r = s.ops.screen(kCoordinator, {{{"diabetes", "maybe"}}, s.yes(), ""});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::invalid_input);
  CHECK(r.error().message.find("use one of yes, no") != std::string::npos);
  auto unknown = s.ops.screen(kCoordinator, {{{"smoker", "yes"}, {"diabetes", "no"}}, s.yes(), ""});
  CHECK_FALSE(unknown.ok());
  CHECK(s.state->domain().participants().empty());
  CHECK(s.screen() == "101-001");
}

TEST_CASE("a no to an eligibility question needs a screen failure reason") {
  Site s;
  auto answers = s.yes();
  answers[1] = "no";
  auto refused = s.ops.screen(kCoordinator, {{{"diabetes", "no"}}, answers, ""});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("screen_failure_reason") != std::string::npos);
  auto failed = s.ops.screen(kCoordinator, {{{"diabetes", "no"}}, answers, "under 18"});
  REQUIRE(failed.ok());
  CHECK(failed->participant.status == shared::ParticipantStatus::screen_failed);
  CHECK(s.event_type(failed->event_seq) == "participant.screen_failed");
  auto r = s.ops.randomize(kCoordinator, failed->participant.number, s.sig(kCoordinator));
  CHECK(r.error().code == shared::Errc::conflict);
}

TEST_CASE("randomization takes the stratum's next slot and first-expiry kits - never expired or near-expiry ones") {
  Site s;
  auto first = s.randomized("no");
  auto second = s.randomized("no");
  CHECK(first.participant.status == shared::ParticipantStatus::randomized);
  CHECK(first.participant.slot == 1);
  CHECK(second.participant.slot == 2);
  CHECK(first.participant.stratum == second.participant.stratum);
  REQUIRE(first.kits.size() == 1);
  const auto& study = *s.state->domain().study();
  const auto& kits = s.state->domain().kits();
  for (const auto& o : {first, second}) {
    const auto& kit = kits.at(o.kits[0]);
    CHECK(kit.status == shared::KitStatus::dispensed);
    CHECK(study.find_kit_type(kit.kit_type)->arm == o.participant.arm);
    CHECK(kit.number != s.fixture.expired_kit);
    CHECK(kit.number != s.fixture.near_expiry_kit);
    // First expiry first out: no available kit of that type expires earlier and is dispensable.
    for (const auto& [n, other] : kits)
      if (other.kit_type == kit.kit_type && node::dispensable(other, s.ops.today(), study.supply.do_not_dispense_days))
        CHECK(other.expiry >= kit.expiry);
  }
}

TEST_CASE("randomizing a participant twice is refused and changes nothing") {
  Site s;
  auto o = s.randomized();
  auto last = s.state->log().last_seq();
  auto again = s.ops.randomize(kCoordinator, o.participant.number, s.sig(kCoordinator));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == shared::Errc::conflict);
  CHECK(again.error().message.find("already randomized") != std::string::npos);
  CHECK(s.state->log().last_seq() == last);
  CHECK(s.state->domain().free_slots(o.participant.stratum) == s.state->domain().free_slots(o.participant.stratum));
}

TEST_CASE("randomization needs the actor's password as an electronic signature with its meaning") {
  Site s;
  auto number = s.screen();
  CHECK(s.ops.randomize(kCoordinator, number, {}).error().code == shared::Errc::invalid_input);
  CHECK(s.ops.randomize(kCoordinator, number, s.sig(kCoordinator, "wrong")).error().code == shared::Errc::unauthenticated);
  CHECK(s.ops.randomize(kNurse, number, s.sig(kNurse)).error().code == shared::Errc::forbidden);
  auto r = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
  REQUIRE(r.ok());
  auto e = s.event(r->event_seq);
  CHECK(e["esignature"]["signer"] == "carla");
  CHECK(e["esignature"]["meaning"] == "I confirm the randomization of participant " + number);
  CHECK(e["esignature"]["signed_ms"] == s.now);
}

TEST_CASE("a password checked before the roster changed is refused when used - and nothing changes") {
  Site s;
  auto number = s.screen();
  // Checked (with no lock held, in the API) before a roster directive lands.
  auto signature = s.sig(kCoordinator);
  auto login = node::check_password(node::find_user(s.state->log(), "ines"), "ines", kPassword);
  json roster = {{"users", json::array()}};
  for (const auto& [name, role] : s.fixture.users()) {
    if (name == "ines") continue;  // removed from the roster
    auto password = name == "carla" ? std::string("a-new-password-2025") : kPassword;  // given a new password
    roster["users"].push_back({{"name", name}, {"role", role}, {"sites", {"101"}},
                               {"password_hash", crypto::password_hash(password, crypto::kTest)}});
  }
  REQUIRE(s.fixture.send(*s.state, "roster", roster).ok());
  auto last = s.state->log().last_seq();
  CHECK(s.ops.randomize(kCoordinator, number, signature).error().code == shared::Errc::unauthenticated);
  CHECK(s.ops.login(login).error().code == shared::Errc::unauthenticated);
  CHECK(s.state->log().last_seq() == last);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
  CHECK(s.ops.randomize(kCoordinator, number, s.sig(kCoordinator, "a-new-password-2025")).ok());
}

TEST_CASE("the arm travels in the event only sealed to the hub's unblinding key") {
  Site s;
  auto o = s.randomized();
  auto e = s.event(o.event_seq);
  auto text = e.dump();
  CHECK(text.find("\"arm\"") == std::string::npos);
  CHECK(text.find("VLC25") == std::string::npos);
  CHECK(text.find("PBO") == std::string::npos);
  auto sealed = crypto::from_base64(e["sealed"].get<std::string>());
  REQUIRE(sealed);
  auto opened = crypto::open_sealed(s.fixture.unblinding_key(), *sealed);
  REQUIRE(opened);
  auto inner = json::parse(crypto::to_string(*opened));
  CHECK(inner["arm"] == o.participant.arm);
  CHECK(inner["kit_types"].size() == 1);
}

TEST_CASE("when a stratum's slots run out the message names the stratum and asks for a sync") {
  test::NodeFixtureOptions o;
  o.slots_per_stratum = 1;  // one block (4 or 6 slots)
  o.kits_per_type = 8;
  Site s(o);
  auto stratum = s.state->domain().strata()->index_of({{"site", "101"}, {"diabetes", "yes"}}).value();
  std::size_t free = s.state->domain().free_slots(static_cast<std::uint32_t>(stratum));
  for (std::size_t i = 0; i < free; ++i) s.randomized("yes");
  auto number = s.screen("yes");
  auto before = s.state->log().last_seq();
  auto r = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::exhausted);
  CHECK(r.error().message == "no randomization slots left at this node for stratum site=101;diabetes=yes; nothing "
                             "was changed; sync with the hub to receive more slots");
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
}

TEST_CASE("when a kit type runs out randomization stops - with the one blinded refusal - and keeps the slot") {
  test::NodeFixtureOptions o;
  o.kits_per_type = 1;
  Site s(o);
  // Two usable kits (one per arm); keep randomizing until one arm's kits are gone.
  std::optional<shared::Error> refusal;
  std::string number;
  std::size_t slots_before = 0;
  for (int i = 0; i < 4 && !refusal; ++i) {
    number = s.screen();
    slots_before = s.state->domain().free_slots(0) + s.state->domain().free_slots(1);
    auto r = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
    if (!r) refusal = r.error();
  }
  REQUIRE(refusal);
  CHECK(refusal->code == shared::Errc::exhausted);
  CHECK(refusal->message == "no dispensable kit for participant " + number +
                                " at visit V1 in this site's custody, so the participant is not randomized" +
                                kShortageTail);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
  CHECK(s.state->domain().free_slots(0) + s.state->domain().free_slots(1) == slots_before);
}

TEST_CASE("a kit shortage refuses every blinded role alike whatever the participant's arm - no count - no label") {
  Site s;
  auto [pa, pb] = s.one_per_arm();
  s.advance_days(56);  // V3: two kits per arm
  const node::DispenseRequest v3{"V3", "", "", "", "", {}, kV3First};
  std::set<std::string> seen;
  auto refuse_all = [&](const node::OperationOutcome& o) {
    const auto& number = o.participant.number;
    for (const auto& actor : {kCoordinator, kInvestigator, kNurse}) {
      auto before = s.state->log().last_seq();
      auto r = s.ops.dispense(actor, number, v3);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == shared::Errc::exhausted);
      seen.insert(without(r.error().message, {number}));
      CHECK(s.state->log().last_seq() == before + 1);  // the shortage, and nothing else
      CHECK(s.event_type(before + 1) == "supply.shortage");
      CHECK(s.state->domain().find_participant(number)->visits.size() == 1);
    }
  };
  // Arm A short by one kit, arm B not.
  s.leave_dispensable("A", 1);
  refuse_all(pa);
  CHECK(s.dispensable_of("A") == 1);
  // Arm B short by two, arm A restocked by the pending shipment.
  s.receive_pending();
  s.leave_dispensable("B", 0);
  REQUIRE(s.dispensable_of("A") >= 2);
  refuse_all(pb);
  CHECK(seen.size() == 1);  // before: "2 of 'Study drug, 30 tablets' needed, 1 dispensable" against "..., 0 dispensable"
  CHECK(seen == std::set<std::string>{"no dispensable kit for participant # at visit V3 in this site's custody" +
                                      kShortageTail});
}

TEST_CASE("the unblinded pharmacist reads which kit type is short and by how many") {
  Site s;
  auto [pa, pb] = s.one_per_arm();
  s.advance_days(56);
  s.leave_dispensable("A", 1);
  auto r = s.ops.dispense(kPharmacist, pa.participant.number, {"V3", "", "", "", "", {}, kV3First});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::exhausted);
  CHECK(r.error().message.find("(2 of 'Velcardin 25 mg, 30 tablets' (VLC25) needed, 1 dispensable; expired") !=
        std::string::npos);
  CHECK(s.ops.dispense(kPharmacist, pb.participant.number, {"V3", "", "", "", "", {}, kV3First}).ok());
}

TEST_CASE("a shortage is recorded with the participant - the visit and the operation in clear - the kits sealed") {
  Site s;
  s.leave_dispensable("A", 0);
  auto stratum = s.state->domain().strata()->index_of({{"site", "101"}, {"diabetes", "no"}}).value();
  auto [number, refusal] = s.refused_randomization();
  CHECK(refusal.code == shared::Errc::exhausted);
  const auto* p = s.state->domain().find_participant(number);
  CHECK(p->status == shared::ParticipantStatus::screened);
  CHECK(p->randomization_number.empty());
  CHECK(s.state->domain().next_free_slot(static_cast<std::uint32_t>(stratum))->arm == "A");
  auto seq = s.state->log().last_seq();
  REQUIRE(s.event_type(seq) == "supply.shortage");
  auto e = s.event(seq);
  CHECK(e.size() == 5);
  CHECK(e["study_version"] == 1);
  CHECK(e["participant"] == number);
  CHECK(e["visit"] == "V1");
  CHECK(e["operation"] == "randomize");
  auto sealed = crypto::open_sealed(s.fixture.unblinding_key(), *crypto::from_base64(e["sealed"].get<std::string>()));
  REQUIRE(sealed);
  CHECK(json::parse(crypto::to_string(*sealed)) ==
        json{{"shortages", {{{"kit_type", "VLC25"}, {"needed", 1}, {"dispensable", 0}}}}});
  // Survives a restart: the refusal did not roll the record back.
  CHECK(s.fixture.open()->log().last_seq() == seq);
}

TEST_CASE("a wrong signature with kits short gets the signature refusal and records nothing") {
  Site s;
  auto [pa, pb] = s.one_per_arm();
  s.leave_dispensable("A", 0);
  s.leave_dispensable("B", 0);
  auto [number, refusal] = s.refused_randomization();
  auto last = s.state->log().last_seq();
  auto randomize = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator, "wrong"));
  CHECK(randomize.error().code == shared::Errc::unauthenticated);
  CHECK(randomize.error().message.find("electronic signature did not verify") != std::string::npos);
  auto dispense = s.ops.dispense(kCoordinator, pa.participant.number, {"V2", "patient travels", "", "", "", s.sig(kCoordinator, "wrong")});
  CHECK(dispense.error().code == shared::Errc::unauthenticated);
  auto replace = s.ops.dispense(kCoordinator, pb.participant.number, {"V1", "", pb.kits[0], "lost", "dropped", s.sig(kCoordinator, "wrong")});
  CHECK(replace.error().code == shared::Errc::unauthenticated);
  CHECK(s.ops.randomize(kNurse, number, s.sig(kNurse)).error().code == shared::Errc::forbidden);
  CHECK(s.state->log().last_seq() == last);
  // With the right password the same requests meet the shortage, alike for both arms.
  auto a = s.ops.dispense(kCoordinator, pa.participant.number, {"V2", "patient travels", "", "", "", s.sig(kCoordinator)});
  auto b = s.ops.dispense(kCoordinator, pb.participant.number, {"V2", "patient travels", "", "", "", s.sig(kCoordinator)});
  CHECK(a.error().code == shared::Errc::exhausted);
  CHECK(without(a.error().message, {pa.participant.number}) == without(b.error().message, {pb.participant.number}));
  auto ra = s.ops.dispense(kCoordinator, pa.participant.number, {"V1", "", pa.kits[0], "lost", "dropped", s.sig(kCoordinator)});
  auto rb = s.ops.dispense(kCoordinator, pb.participant.number, {"V1", "", pb.kits[0], "lost", "dropped", s.sig(kCoordinator)});
  CHECK(ra.error().message == "no dispensable kit to replace kit " + pa.kits[0] + " of participant " +
                                  pa.participant.number + " at visit V1 in this site's custody" + kShortageTail);
  CHECK(without(ra.error().message, {pa.participant.number, pa.kits[0]}) ==
        without(rb.error().message, {pb.participant.number, pb.kits[0]}));
  CHECK(s.event(s.state->log().last_seq())["operation"] == "replace");
  CHECK(s.event(s.state->log().last_seq())["replace_kit"] == pb.kits[0]);
}

TEST_CASE("a minimization randomization refused for want of kits uses no decision and says nothing of the arm") {
  test::NodeFixtureOptions o;
  o.study_file = "packaging/examples/study-minimization.json";
  o.site = "301";
  Site s(o);
  s.leave_dispensable("H", 0);
  std::optional<shared::Error> refusal;
  std::string number;
  std::uint64_t decisions = 0;
  for (int i = 0; i < 12 && !refusal; ++i) {
    auto r = s.ops.screen(kCoordinator, {{{"age_group", "under_65"}, {"hoehn_yahr", "1-1.5"}}, s.yes(), "", "main"});
    REQUIRE(r.ok());
    number = r->participant.number;
    decisions = s.state->domain().stream()->decisions;
    auto z = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
    if (!z) refusal = z.error();
  }
  REQUIRE(refusal);
  CHECK(refusal->message == "no dispensable kit for participant " + number +
                                " at visit BL in this site's custody, so the participant is not randomized" +
                                kShortageTail);
  CHECK(s.state->domain().stream()->decisions == decisions);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
}

TEST_CASE("dispensing inside the visit window hands out the arm's kits for that visit") {
  Site s;
  auto o = s.randomized();
  s.advance_days(27);
  auto r = s.ops.dispense(kPharmacist, o.participant.number, {"V2", "", "", "", "", {}});
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK_FALSE(r->deviation);
  REQUIRE(r->kits.size() == 1);
  const auto& kit = s.state->domain().kits().at(r->kits[0]);
  CHECK(s.state->domain().study()->find_kit_type(kit.kit_type)->arm == o.participant.arm);
  CHECK(s.event_type(r->event_seq) == "kit.dispensed");
  auto again = s.ops.dispense(kPharmacist, o.participant.number, {"V2", "", "", "", "", {}});
  CHECK(again.error().code == shared::Errc::conflict);
}

TEST_CASE("outside the window dispensing needs an override reason and a signature - and records a deviation") {
  Site s;
  auto o = s.randomized();
  auto last = s.state->log().last_seq();
  auto refused = s.ops.dispense(kCoordinator, o.participant.number, {"V2", "", "", "", "", {}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("outside its window: today is day 0 after randomization, the window is days 25 "
                                     "to 31") != std::string::npos);
  CHECK(s.ops.dispense(kCoordinator, o.participant.number, {"V2", "patient travels", "", "", "", {}}).error().code ==
        shared::Errc::invalid_input);
  CHECK(s.state->log().last_seq() == last);
  auto r = s.ops.dispense(kCoordinator, o.participant.number, {"V2", "patient travels", "", "", "", s.sig(kCoordinator)});
  REQUIRE(r.ok());
  CHECK(r->deviation);
  auto e = s.event(r->event_seq);
  CHECK(e["deviation"]["reason"] == "patient travels");
  CHECK(e["esignature"]["meaning"].get<std::string>().find("outside its window") != std::string::npos);
}

TEST_CASE("a visit dispensed before an earlier one is done or missed needs a reason - kept in the record and the event") {
  Site s;
  auto o = s.randomized();
  const auto number = o.participant.number;
  s.advance_days(56);  // inside V3's window; V2 (day 28) was neither dispensed nor recorded as missed
  auto last = s.state->log().last_seq();
  auto refused = s.ops.dispense(kPharmacist, number, {"V3", "", "", "", "", {}});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::invalid_input);
  CHECK(refused.error().message.find("visit V2 of participant " + number + " comes before V3 and is neither done nor "
                                     "recorded as missed") != std::string::npos);
  CHECK(s.ops.dispense(kPharmacist, number, {"V3", "", "", "", "", {}, "  "}).error().code ==
        shared::Errc::invalid_input);
  CHECK(s.state->log().last_seq() == last);
  auto r = s.ops.dispense(kPharmacist, number, {"V3", "", "", "", "", {}, "V2 postponed: participant in hospital"});
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK_FALSE(r->deviation);
  CHECK(s.event(r->event_seq)["out_of_order"]["reason"] == "V2 postponed: participant in hospital");
  CHECK(s.event(r->event_seq).count("deviation") == 0);
  auto view = s.ops.participant_view(kNurse, number);
  REQUIRE(view.ok());
  CHECK((*view)["visits"].back()["order_reason"] == "V2 postponed: participant in hospital");
  // Once V2 is recorded as missed, V4 is in order again: no reason asked.
  REQUIRE(s.ops.record_visit(kNurse, number, "V2", true, "participant in hospital").ok());
  s.advance_days(56);  // day 112: V4's target
  auto v4 = s.ops.dispense(kPharmacist, number, {"V4", "", "", "", "", {}});
  REQUIRE_MESSAGE(v4.ok(), (v4.ok() ? "" : v4.error().message));
  CHECK(s.event(v4->event_seq).count("out_of_order") == 0);
}

TEST_CASE("a visit not in the schedule is refused with the visits that dispense") {
  Site s;
  auto o = s.randomized();
  auto r = s.ops.dispense(kCoordinator, o.participant.number, {"V9", "", "", "", "", {}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::not_found);
  CHECK(r.error().message == "visit 'V9' is not in the schedule; use one of V2, V3, V4");
  CHECK(s.ops.dispense(kCoordinator, o.participant.number, {"V5", "", "", "", "", {}}).error().code ==
        shared::Errc::invalid_input);
}

TEST_CASE("a damaged kit is replaced by one of the same type - with a reason and a signature") {
  Site s;
  auto o = s.randomized();
  auto old_kit = o.kits[0];
  node::DispenseRequest req{"V1", "", old_kit, "damaged", "", s.sig(kCoordinator)};
  CHECK(s.ops.dispense(kCoordinator, o.participant.number, req).error().code == shared::Errc::invalid_input);
  req.reason = "bottle cracked";
  auto r = s.ops.dispense(kCoordinator, o.participant.number, req);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  const auto& kits = s.state->domain().kits();
  CHECK(kits.at(old_kit).status == shared::KitStatus::damaged);
  CHECK(kits.at(r->kits[0]).kit_type == kits.at(old_kit).kit_type);
  CHECK(s.state->domain().find_participant(o.participant.number)->find_visit("V1")->kits == r->kits);
  CHECK(s.event_type(r->event_seq) == "kit.replaced");
}

TEST_CASE("the code break is the investigator's - needs a reason and a signature - and is flagged") {
  Site s;
  auto o = s.randomized();
  CHECK(s.ops.unblind(kCoordinator, o.participant.number, "allergy", s.sig(kCoordinator)).error().code ==
        shared::Errc::forbidden);
  CHECK(s.ops.unblind(kInvestigator, o.participant.number, " ", s.sig(kInvestigator)).error().code ==
        shared::Errc::invalid_input);
  auto r = s.ops.unblind(kInvestigator, o.participant.number, "anaphylaxis", s.sig(kInvestigator));
  REQUIRE(r.ok());
  CHECK(r->participant.arm == o.participant.arm);
  auto e = s.event(r->event_seq);
  CHECK(e["flag"] == "code_break");
  CHECK(e["reason"] == "anaphylaxis");
  CHECK(e.dump().find("\"arm\"") == std::string::npos);
}

TEST_CASE("after the code break the record shows the arm to roles that may break it - who broke it and when to all") {
  Site s;
  auto o = s.randomized();
  const auto& number = o.participant.number;
  auto before = s.ops.participant_view(kInvestigator, number);
  REQUIRE(before.ok());
  CHECK_FALSE(before->contains("arm"));
  CHECK_FALSE(before->contains("unblinded_by"));
  REQUIRE(s.ops.unblind(kInvestigator, number, "anaphylaxis", s.sig(kInvestigator)).ok());
  auto investigator = s.ops.participant_view(kInvestigator, number);
  REQUIRE(investigator.ok());
  CHECK((*investigator)["arm"]["id"] == o.participant.arm);
  CHECK((*investigator)["unblinded_by"] == kInvestigator.user);
  CHECK((*investigator)["unblinded_on"] == shared::format_date(s.ops.today()));
  CHECK_FALSE((*investigator)["visits"][0]["kits"][0].contains("kit_type"));  // the kits stay blinded
  auto coordinator = s.ops.participant_view(kCoordinator, number);
  REQUIRE(coordinator.ok());
  CHECK_FALSE(coordinator->contains("arm"));
  CHECK((*coordinator)["unblinded_by"] == kInvestigator.user);
  // Kept across a restart.
  auto reopened = s.fixture.open();
  CHECK(reopened->domain().find_participant(number)->unblinded_by == kInvestigator.user);
}

TEST_CASE("the schedule says upcoming - due - overdue - missed - done: visits without kits are done, a missed one has a reason") {
  Site s;
  auto o = s.randomized();
  const auto number = o.participant.number;
  auto state_of = [&](const std::string& visit) {
    auto view = s.ops.participant_view(kNurse, number);
    REQUIRE(view.ok());
    for (const auto& e : (*view)["schedule"])
      if (e["visit"] == visit) return e["state"].get<std::string>();
    return std::string("(not in the schedule)");
  };
  auto due_list = [&](const Actor& a) {
    std::vector<std::string> out;
    auto due = s.ops.visits_due_view(a, 7);
    REQUIRE(due.ok());
    CHECK(due->dump().find("\"arm\"") == std::string::npos);
    for (const auto& v : (*due)["visits"]) out.push_back(v["participant"].get<std::string>() + " " + v["visit"].get<std::string>() + " " + v["state"].get<std::string>());
    return out;
  };
  CHECK(state_of("V1") == "done");
  CHECK(state_of("V2") == "upcoming");
  CHECK(due_list(kNurse).empty());
  s.advance_days(21);  // V2's window opens on day 25: within the week
  CHECK(due_list(kNurse) == std::vector<std::string>{number + " V2 upcoming"});
  s.advance_days(7);
  CHECK(state_of("V2") == "due");
  CHECK(due_list(kNurse) == std::vector<std::string>{number + " V2 due"});
  s.advance_days(4);
  CHECK(state_of("V2") == "overdue");
  CHECK(due_list(kPharmacist) == std::vector<std::string>{number + " V2 overdue"});
  CHECK(s.ops.visits_due_view({"mona", "monitor"}, 7).ok());

  // A visit that dispenses is done by dispensing; missed needs the reason.
  CHECK(s.ops.record_visit(kNurse, number, "V2", false, "").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.record_visit(kNurse, number, "V2", true, " ").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.record_visit(kNurse, number, "V9", true, "x").error().code == shared::Errc::not_found);
  CHECK(s.ops.record_visit(kNurse, number, "V1", true, "x").error().code == shared::Errc::not_found);
  CHECK(s.ops.record_visit({"mona", "monitor"}, number, "V2", true, "x").error().code == shared::Errc::forbidden);
  auto before = s.state->log().last_seq();
  auto missed = s.ops.record_visit(kNurse, number, "V2", true, "in hospital");
  REQUIRE(missed.ok());
  CHECK(s.state->log().last_seq() == before + 1);
  CHECK(s.event_type(missed->event_seq) == "visit.recorded");
  CHECK(s.event(missed->event_seq)["reason"] == "in hospital");
  CHECK(state_of("V2") == "missed");
  CHECK(due_list(kNurse).empty());
  CHECK(s.ops.record_visit(kNurse, number, "V2", true, "again").error().code == shared::Errc::conflict);
  auto late = s.ops.dispense(kCoordinator, number, {"V2", "late", "", "", "", s.sig(kCoordinator)});
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().message.find("recorded as missed") != std::string::npos);
  REQUIRE(s.ops.record_visit(kNurse, number, "V5", false, "").ok());
  CHECK(state_of("V5") == "done");

  // The preview names the kits dispensing then hands out, and changes nothing.
  s.advance_days(24);  // day 56: V3
  before = s.state->log().last_seq();
  auto preview = s.ops.dispense_preview(kNurse, number, "V3");
  REQUIRE(preview.ok());
  CHECK(preview->size() == 2);
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.ops.dispense_preview(kNurse, number, "V2").error().code == shared::Errc::conflict);
  auto d = s.ops.dispense(kNurse, number, {"V3", "", "", "", "", {}});
  REQUIRE(d.ok());
  CHECK(d->kits == *preview);

  // Once off treatment nothing is planned.
  REQUIRE(s.ops.withdraw(kCoordinator, number, "moved", s.sig(kCoordinator)).ok());
  CHECK(state_of("V4") == "not_planned");
}

TEST_CASE("a shipment is received kit by kit - damage needs a signature") {
  Site s;
  const auto& pending = s.fixture.pending_shipment();
  REQUIRE(pending.kits.size() >= 3);
  std::vector<node::KitReceipt> receipts = {{pending.kits[0].kit_number, "received"},
                                            {pending.kits[1].kit_number, "damaged"},
                                            {pending.kits[2].kit_number, "missing"}};
  CHECK(s.ops.receive_shipment(kCoordinator, pending.shipment_id, receipts, {}).error().code ==
        shared::Errc::invalid_input);
  CHECK(s.ops.receive_shipment(kCoordinator, pending.shipment_id, {{"999", "received"}}, {}).error().code ==
        shared::Errc::not_found);
  CHECK(s.ops.receive_shipment(kCoordinator, "SHP-9999", receipts, s.sig(kCoordinator)).error().code == shared::Errc::not_found);
  auto r = s.ops.receive_shipment(kCoordinator, pending.shipment_id, receipts, s.sig(kCoordinator));
  REQUIRE(r.ok());
  const auto& kits = s.state->domain().kits();
  CHECK(kits.at(pending.kits[0].kit_number).status == shared::KitStatus::available);
  CHECK(kits.at(pending.kits[1].kit_number).status == shared::KitStatus::damaged);
  CHECK(kits.at(pending.kits[2].kit_number).status == shared::KitStatus::missing);
  CHECK(s.ops.receive_shipment(kCoordinator, pending.shipment_id, {receipts[0]}, {}).error().code ==
        shared::Errc::conflict);
}

TEST_CASE("a quarantined kit is not dispensed until the hub releases it - a rejected one never") {
  Site s;
  const auto& kits = s.state->domain().kits();
  std::vector<std::string> stock;
  for (const auto& [n, k] : kits)
    if (k.status == shared::KitStatus::available) stock.push_back(n);
  CHECK(s.ops.quarantine(kCoordinator, stock[0], "", 31.5).error().code == shared::Errc::invalid_input);
  REQUIRE(s.ops.quarantine(kCoordinator, stock[0], "fridge at 31.5 C for 2 h", 31.5).ok());
  REQUIRE(s.ops.quarantine(kNurse, stock[1], "fridge at 31.5 C for 2 h", 31.5).ok());
  CHECK(kits.at(stock[0]).status == shared::KitStatus::quarantined);
  CHECK_FALSE(node::dispensable(kits.at(stock[0]), s.ops.today(), 70));
  // The choice dispensing makes (pick_kits) takes neither, whatever it is asked for.
  auto picked = [&](const std::string& kit) {
    auto pick = node::pick_kits(s.state->domain().kits(), kits.at(kit).kit_type, static_cast<int>(kits.size()),
                                s.ops.today(), 0);
    return std::find(pick.kits.begin(), pick.kits.end(), kit) != pick.kits.end();
  };
  CHECK_FALSE(picked(stock[0]));
  CHECK_FALSE(picked(stock[1]));
  CHECK(picked(stock[2]));
  REQUIRE(s.fixture.send(*s.state, "kits.release", shared::KitDecision{1, {stock[0]}, "excursion within stability"}).ok());
  REQUIRE(s.fixture.send(*s.state, "kits.reject", shared::KitDecision{2, {stock[1]}, "out of stability"}).ok());
  CHECK(s.state->domain().kits().at(stock[0]).status == shared::KitStatus::available);
  CHECK(s.state->domain().kits().at(stock[1]).status == shared::KitStatus::rejected);
  CHECK(picked(stock[0]));
  CHECK_FALSE(picked(stock[1]));
  // Survives a restart: the decision is in the database, not only in memory.
  auto reopened = s.fixture.open();
  CHECK(reopened->domain().kits().at(stock[1]).status == shared::KitStatus::rejected);
}

TEST_CASE("returns record units - destruction needs the pharmacist's signature and a witness's") {
  Site s;
  auto o = s.randomized();
  auto kit = o.kits[0];
  CHECK(s.ops.return_kit(kCoordinator, kit, 31).error().code == shared::Errc::invalid_input);
  CHECK(s.ops.return_kit(kCoordinator, kit, 4, "V99").error().code == shared::Errc::invalid_input);
  auto returned = s.ops.return_kit(kCoordinator, kit, 4, "V2");
  REQUIRE(returned.ok());
  CHECK(s.state->domain().kits().at(kit).units_returned == 4);
  auto e = s.event(*returned);
  CHECK(e["units_returned"] == 4);
  CHECK(e["visit"] == "V2");
  CHECK(e["participant"] == o.participant.number);
  const auto before = s.state->log().last_seq();
  CHECK(s.ops.destroy_kit(kCoordinator, kit, "returned", s.sig(kCoordinator), s.sig(kPharmacist)).error().code ==
        shared::Errc::forbidden);
  CHECK(s.ops.destroy_kit(kPharmacist, kit, "returned", {}, s.sig(kCoordinator)).error().code ==
        shared::Errc::invalid_input);
  auto alone = s.ops.destroy_kit(kPharmacist, kit, "returned", s.sig(kPharmacist));
  CHECK(alone.error().code == shared::Errc::invalid_input);
  CHECK(alone.error().message.find("witness") != std::string::npos);
  auto self = s.ops.destroy_kit(kPharmacist, kit, "returned", s.sig(kPharmacist), s.sig(kPharmacist));
  CHECK(self.error().message.find("another person") != std::string::npos);
  CHECK(s.ops.destroy_kit(kPharmacist, kit, "returned", s.sig(kPharmacist), s.sig(kCoordinator, "not-the-password"))
            .error()
            .code == shared::Errc::unauthenticated);
  // A nurse may neither destroy nor return kits: not a witness.
  CHECK(s.ops.destroy_kit(kPharmacist, kit, "returned", s.sig(kPharmacist), s.sig(kNurse)).error().code ==
        shared::Errc::forbidden);
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.state->domain().kits().at(kit).status == shared::KitStatus::returned);
  auto destroyed = s.ops.destroy_kit(kPharmacist, kit, "returned", s.sig(kPharmacist), s.sig(kCoordinator));
  REQUIRE(destroyed.ok());
  CHECK(s.state->domain().kits().at(kit).status == shared::KitStatus::destroyed);
  auto d = s.event(*destroyed);
  CHECK(d["esignature"]["signer"] == "paul");
  CHECK(d["witness"]["signer"] == "carla");
  CHECK(d["witness"]["role"] == "coordinator");
  CHECK(d["witness"]["meaning"].get<std::string>().find("witnessed") != std::string::npos);
}

TEST_CASE("a dispensed kit is never destroyed at the site") {
  Site s;
  auto o = s.randomized();
  const auto before = s.state->log().last_seq();
  auto r = s.ops.destroy_kit(kPharmacist, o.kits[0], "spilled", s.sig(kPharmacist), s.sig(kCoordinator));
  CHECK(r.error().code == shared::Errc::conflict);
  CHECK(r.error().message.find("dispensed") != std::string::npos);
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.state->domain().kits().at(o.kits[0]).status == shared::KitStatus::dispensed);
}

namespace {

std::vector<std::string> in_stock(const Site& s) {
  std::vector<std::string> stock;
  for (const auto& [n, k] : s.state->domain().kits())
    if (k.status == shared::KitStatus::available) stock.push_back(n);
  return stock;
}

node::ExcursionReport excursion(std::vector<std::string> kits, std::string location = "") {
  return {std::move(kits), std::move(location), 9.0, 31.5, 140, "fridge door left open"};
}

}  // namespace

TEST_CASE("an excursion for a storage location quarantines every kit in stock there at once, in one event") {
  Site s;
  auto stock = in_stock(s);
  REQUIRE(stock.size() >= 4);
  CHECK(s.ops.store_kits(kNurse, {stock[0]}, "FRIDGE-1").error().code == shared::Errc::forbidden);
  CHECK(s.ops.store_kits(kCoordinator, {stock[0]}, " ").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.store_kits(kCoordinator, {stock[0], "999"}, "FRIDGE-1").error().code == shared::Errc::not_found);
  auto stored = s.ops.store_kits(kCoordinator, {stock[0], stock[1], stock[2]}, "FRIDGE-1");
  REQUIRE(stored.ok());
  CHECK(s.event_type(*stored) == "kit.stored");
  REQUIRE(s.ops.store_kits(kCoordinator, {stock[2]}, "FRIDGE-2").ok());  // moved
  CHECK(s.state->domain().kits().at(stock[2]).location == "FRIDGE-2");

  auto r = s.ops.report_excursion(kNurse, excursion({}, "FRIDGE-1"));
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->kits == std::vector<std::string>{stock[0], stock[1]});
  const auto& kits = s.state->domain().kits();
  CHECK(kits.at(stock[0]).status == shared::KitStatus::quarantined);
  CHECK(kits.at(stock[1]).status == shared::KitStatus::quarantined);
  CHECK(kits.at(stock[2]).status == shared::KitStatus::available);
  CHECK(kits.at(stock[0]).note == "fridge door left open");
  CHECK(s.event_type(r->event_seq) == "kit.excursion");
  auto e = s.event(r->event_seq);
  CHECK(e["kits"] == json{stock[0], stock[1]});
  CHECK(e["location"] == "FRIDGE-1");
  CHECK(e["minimum_celsius"] == 9.0);
  CHECK(e["maximum_celsius"] == 31.5);
  CHECK(e["duration_minutes"] == 140);
  CHECK(s.event(r->event_seq - 1)["kits"] == json{stock[2]});  // one event per report, the move before it
  // Survives a restart, location included.
  auto reopened = s.fixture.open();
  CHECK(reopened->domain().kits().at(stock[0]).status == shared::KitStatus::quarantined);
  CHECK(reopened->domain().kits().at(stock[2]).location == "FRIDGE-2");
  // The fridge holds nothing in stock any more.
  CHECK(s.ops.report_excursion(kNurse, excursion({}, "FRIDGE-1")).error().code == shared::Errc::not_found);
}

TEST_CASE("an excursion for listed kits quarantines them all or none, and refuses what it cannot record") {
  Site s;
  auto o = s.randomized();
  auto stock = in_stock(s);
  const auto before = s.state->log().last_seq();
  auto refused = [&](const node::ExcursionReport& r, shared::Errc code, const std::string& words) {
    auto result = s.ops.report_excursion(kNurse, r);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == code);
    CHECK_MESSAGE(result.error().message.find(words) != std::string::npos, result.error().message);
  };
  refused(excursion({}), shared::Errc::invalid_input, "one of the two");
  refused(excursion({stock[0]}, "FRIDGE-1"), shared::Errc::invalid_input, "one of the two");
  refused(excursion({stock[0], o.kits[0]}), shared::Errc::conflict, "dispensed");
  refused(excursion({stock[0], "424242"}), shared::Errc::not_found, "424242");
  refused(excursion({stock[0], stock[0]}), shared::Errc::invalid_input, "twice");
  auto low_high = excursion({stock[0]});
  low_high.maximum_celsius = 2.0;
  refused(low_high, shared::Errc::invalid_input, "below minimum_celsius");
  auto no_time = excursion({stock[0]});
  no_time.duration_minutes.reset();
  refused(no_time, shared::Errc::invalid_input, "duration_minutes");
  auto no_reading = excursion({stock[0]});
  no_reading.minimum_celsius.reset();
  refused(no_reading, shared::Errc::invalid_input, "minimum_celsius");
  auto no_reason = excursion({stock[0]});
  no_reason.reason = " ";
  refused(no_reason, shared::Errc::invalid_input, "reason");
  CHECK(s.ops.report_excursion(kInvestigator, excursion({stock[0]})).error().code == shared::Errc::forbidden);
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.state->domain().kits().at(stock[0]).status == shared::KitStatus::available);

  auto r = s.ops.report_excursion(kNurse, excursion({stock[0], stock[1]}));
  REQUIRE(r.ok());
  CHECK(r->kits.size() == 2);
  CHECK_FALSE(s.event(r->event_seq).contains("location"));
  // A quarantined kit is never dispensed; quarantining it again is refused.
  CHECK_FALSE(node::dispensable(s.state->domain().kits().at(stock[1]), s.ops.today(), 0));
  refused(excursion({stock[1]}), shared::Errc::conflict, "quarantined");
}

TEST_CASE("kits received into a storage location are found there by an excursion") {
  Site s;
  const auto& pending = s.fixture.pending_shipment();
  std::vector<node::KitReceipt> receipts;
  for (const auto& k : pending.kits) receipts.push_back({k.kit_number, "received"});
  auto r = s.ops.receive_shipment(kCoordinator, pending.shipment_id, receipts, {}, " FRIDGE-3 ");
  REQUIRE(r.ok());
  CHECK(s.event(*r)["location"] == "FRIDGE-3");
  auto q = s.ops.report_excursion(kCoordinator, excursion({}, "FRIDGE-3"));
  REQUIRE(q.ok());
  CHECK(q->kits.size() == pending.kits.size());
}

TEST_CASE("the hub's rejection takes kits in stock too, its release only quarantined ones, and a rejected kit goes back "
          "unused or is destroyed") {
  Site s;
  auto stock = in_stock(s);
  REQUIRE(s.fixture.send(*s.state, "kits.reject", shared::KitDecision{1, {stock[0]}, "lot recalled"}).ok());
  REQUIRE(s.fixture.send(*s.state, "kits.release", shared::KitDecision{2, {stock[1]}, "never quarantined"}).ok());
  const auto& kits = s.state->domain().kits();
  CHECK(kits.at(stock[0]).status == shared::KitStatus::rejected);
  CHECK(kits.at(stock[1]).status == shared::KitStatus::available);
  CHECK(s.ops.quarantine(kCoordinator, stock[0], "fridge", 30.0).error().code == shared::Errc::conflict);
  CHECK(s.ops.return_kit(kCoordinator, stock[0], 3).error().code == shared::Errc::invalid_input);
  CHECK(s.ops.return_kit(kCoordinator, stock[0], 0, "V2").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.return_kit(kCoordinator, stock[1], 0).error().code == shared::Errc::conflict);
  auto back = s.ops.return_kit(kCoordinator, stock[0], 0);
  REQUIRE(back.ok());
  CHECK(kits.at(stock[0]).status == shared::KitStatus::returned);
  CHECK(s.event(*back)["participant"] == "");
}

TEST_CASE("kits the hub puts on hold are never chosen for a visit until released, and a kit already dispensed stays "
          "dispensed") {
  Site s;
  auto o = s.randomized();
  const auto& kits = s.state->domain().kits();
  const auto dispensed = o.kits.at(0);
  const auto type = kits.at(dispensed).kit_type;
  // The kits of the participant's kit type in the order dispensing would take them.
  auto order = node::pick_kits(kits, type, static_cast<int>(kits.size()), s.ops.today(), 0).kits;
  REQUIRE(order.size() >= 2);
  std::vector<std::string> held(order.begin(), order.end() - 1);
  held.push_back(dispensed);
  auto applied = s.fixture.send(*s.state, "kits.quarantine", shared::KitDecision{1, held, "assay under investigation"});
  REQUIRE_MESSAGE(applied.ok(), applied.error().message);
  CHECK(kits.at(dispensed).status == shared::KitStatus::dispensed);
  for (std::size_t i = 0; i + 1 < held.size(); ++i) {
    CHECK(kits.at(held[i]).status == shared::KitStatus::quarantined);
    CHECK(kits.at(held[i]).note == "on hold by the hub: assay under investigation");
  }
  s.advance_days(27);
  auto r = s.ops.dispense(kPharmacist, o.participant.number, {"V2", "", "", "", "", {}});
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  REQUIRE(r->kits.size() == 1);
  CHECK(r->kits[0] == order.back());
  // Released, a held kit is dispensable again; the others stay quarantined.
  REQUIRE(s.fixture.send(*s.state, "kits.release", shared::KitDecision{2, {held[0]}, "assay repeated"}).ok());
  CHECK(kits.at(held[0]).status == shared::KitStatus::available);
  auto again = node::pick_kits(kits, type, static_cast<int>(kits.size()), s.ops.today(), 0).kits;
  CHECK(std::find(again.begin(), again.end(), held[0]) != again.end());
  if (held.size() > 2) CHECK(std::find(again.begin(), again.end(), held[1]) == again.end());
  auto reopened = s.fixture.open();
  CHECK(reopened->domain().kits().at(dispensed).status == shared::KitStatus::dispensed);
}

TEST_CASE("withdrawal - completion and transfer requests need their reasons") {
  Site s;
  auto a = s.randomized();
  auto b = s.randomized();
  auto c = s.screen();
  CHECK(s.ops.withdraw(kCoordinator, a.participant.number, "", s.sig(kCoordinator)).error().code ==
        shared::Errc::invalid_input);
  REQUIRE(s.ops.withdraw(kCoordinator, a.participant.number, "moved abroad", s.sig(kCoordinator)).ok());
  CHECK(s.ops.dispense(kCoordinator, a.participant.number, {"V2", "x", "", "", "", s.sig(kCoordinator)}).error().code ==
        shared::Errc::conflict);
  REQUIRE(s.ops.complete(kCoordinator, b.participant.number).ok());
  CHECK(s.ops.request_transfer(kCoordinator, c, "999", "moves").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.request_transfer(kCoordinator, c, "102", "").error().code == shared::Errc::invalid_input);
  REQUIRE(s.ops.request_transfer(kCoordinator, c, "102", "moves to Paris").ok());
  CHECK(s.state->domain().find_participant(c)->transfer_to == "102");
  CHECK(s.ops.withdraw(kCoordinator, "101-999", "x", s.sig(kCoordinator)).error().code == shared::Errc::not_found);
}

TEST_CASE("withdrawal is signed - a wrong or missing password records nothing") {
  Site s;
  auto a = s.randomized();
  const auto number = a.participant.number;
  auto before = s.state->log().last_seq();
  auto wrong = s.ops.withdraw(kCoordinator, number, "moved abroad", s.sig(kCoordinator, "wrong"));
  REQUIRE(!wrong.ok());
  CHECK(wrong.error().code == shared::Errc::unauthenticated);
  CHECK(wrong.error().message.find("electronic signature did not verify") != std::string::npos);
  auto missing = s.ops.withdraw(kCoordinator, number, "moved abroad", {});
  REQUIRE(!missing.ok());
  CHECK(missing.error().code == shared::Errc::invalid_input);
  CHECK(missing.error().message.find("withdrawal needs your electronic signature") != std::string::npos);
  // Another user's password is not the actor's signature.
  CHECK(s.ops.withdraw(kCoordinator, number, "moved abroad", s.sig(kPharmacist)).error().code ==
        shared::Errc::unauthenticated);
  CHECK(s.state->log().last_seq() == before);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::randomized);

  auto done = s.ops.withdraw(kCoordinator, number, "moved abroad", s.sig(kCoordinator));
  REQUIRE(done.ok());
  auto e = s.event(done->event_seq);
  CHECK(e["reason"] == "moved abroad");
  CHECK(e["esignature"]["signer"] == kCoordinator.user);
  CHECK(e["esignature"]["role"] == kCoordinator.role);
  CHECK(e["esignature"]["meaning"] == "I confirm the withdrawal of participant " + number + " from the study");
  CHECK(e["esignature"]["signed_ms"].get<std::int64_t>() == s.now);
  auto parsed = shared::parse_withdrawn(e.dump());
  REQUIRE(parsed.ok());
  REQUIRE(parsed->esignature);
  CHECK(parsed->esignature->signer == kCoordinator.user);
}

TEST_CASE("everything survives a restart and the log verifies") {
  Site s;
  auto o = s.randomized("yes");
  auto reopened = s.fixture.open();
  const auto* p = reopened->domain().find_participant(o.participant.number);
  REQUIRE(p);
  CHECK(p->arm == o.participant.arm);
  CHECK(p->randomization_number == o.participant.randomization_number);
  CHECK(reopened->domain().kits().at(o.kits[0]).status == shared::KitStatus::dispensed);
  CHECK(reopened->domain().next_number() == "101-002");
  CHECK(reopened->log().verify(reopened->key().public_key()).ok());
}

TEST_CASE("offline minimization draws from the granted stream and every decision replays") {
  test::NodeFixtureOptions o;
  o.study_file = "packaging/examples/study-minimization.json";
  o.site = "301";
  o.kits_per_type = 8;
  Site s(o);
  const auto& study = *s.state->domain().study();
  std::vector<std::string> numbers;
  for (int i = 0; i < 5; ++i) {
    auto r = s.ops.screen(kCoordinator, {{{"age_group", i % 2 ? "under_65" : "65_or_over"}, {"hoehn_yahr", "1-1.5"}},
                                         s.yes(), "", "main"});
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    auto z = s.ops.randomize(kCoordinator, r->participant.number, s.sig(kCoordinator));
    REQUIRE_MESSAGE(z.ok(), (z.ok() ? "" : z.error().message));
    CHECK(z->participant.randomization_number.rfind("M1-", 0) == 0);
    numbers.push_back(r->participant.number);
  }
  CHECK(s.state->domain().stream()->decisions == 5);
  // Replay the last decision from its inputs, as the hub would.
  auto config = shared::minimization_config(study).value();
  shared::MarginalTotals baseline(config), own(config);
  for (std::size_t i = 0; i + 1 < numbers.size(); ++i) {
    const auto* p = s.state->domain().find_participant(numbers[i]);
    auto levels = shared::minimization_levels(config, p->factors).value();
    auto arm = std::find(config.allocation.arms.begin(), config.allocation.arms.end(), p->arm);
    own.add(levels, static_cast<std::size_t>(arm - config.allocation.arms.begin()));
  }
  const auto* last = s.state->domain().find_participant(numbers.back());
  auto record = last->decision.get<shared::OfflineDecisionRecord>();
  shared::OfflineInputs inputs{baseline, own, 0, shared::minimization_levels(config, last->factors).value(), {}};
  struct Source final : shared::RandomSource {
    crypto::DeterministicStream stream{crypto::Bytes(32, 7)};
    void fill(std::span<std::uint8_t> out) override { stream.fill(out); }
  } source;
  std::vector<std::uint8_t> skip(record.stream_start);
  source.fill(skip);
  CHECK(shared::verify_offline_decision(config, inputs, record, source).ok());
}

TEST_CASE("once: an answer that cannot be remembered leaves the operation unapplied, and a retry applies it once") {
  Site s;
  node::RequestIdentity request{"carla", "k-1", "POST /api/v1/participants", crypto::hash_domain("t", {})};
  auto participants = [&] { return s.state->domain().participants().size(); };
  auto last = s.state->log().last_seq();
  auto before = participants();
  auto screen = [&]() -> shared::Result<json> {
    auto o = s.ops.screen(kCoordinator, {{{"diabetes", "no"}}, s.yes(), ""});
    if (!o) return o.error();
    return json{{"participant", o->participant.number}};
  };
  // The operation succeeds, then the disk fails before its answer is kept: nothing of it stays.
  CHECK_THROWS_AS((void)s.ops.once(request, [&]() -> shared::Result<json> {
    (void)screen();
    throw storage::StorageError("disk I/O error");
  }), storage::StorageError);
  CHECK(participants() == before);
  CHECK(s.state->log().last_seq() == last);
  CHECK_FALSE(s.state->db().in_transaction());

  auto first = s.ops.once(request, screen);
  REQUIRE(first.ok());
  CHECK_FALSE(first->replayed);
  auto again = s.ops.once(request, screen);
  REQUIRE(again.ok());
  CHECK(again->replayed);
  CHECK(again->answer == first->answer);
  CHECK(participants() == before + 1);
  CHECK(s.state->log().last_seq() == last + 1);
  CHECK(s.state->log().verify(s.state->key().public_key()).ok());

  // Forgotten after 24 hours: the same key is then a new request.
  s.now += node::kIdempotencyKeepMs + 1;
  auto later = s.ops.once(request, screen);
  REQUIRE(later.ok());
  CHECK_FALSE(later->replayed);
  CHECK(participants() == before + 2);
}

TEST_CASE("once: what a refusal records of its own (a supply shortage) is kept, and the request is not remembered") {
  Site s;
  auto [pa, pb] = s.one_per_arm();
  s.advance_days(56);  // V3: two kits per arm
  s.leave_dispensable("A", 1);
  node::RequestIdentity request{"carla", "k-2", "POST /api/v1/participants/" + pa.participant.number + "/dispense",
                                crypto::hash_domain("t", {})};
  auto dispense = [&, number = pa.participant.number]() -> shared::Result<json> {
    auto o = s.ops.dispense(kCoordinator, number, {"V3", "", "", "", "", {}, kV3First});
    if (!o) return o.error();
    return json{{"event_seq", o->event_seq}};
  };
  auto before = s.state->log().last_seq();
  auto refused = s.ops.once(request, dispense);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::exhausted);
  CHECK(s.state->log().last_seq() == before + 1);
  CHECK(s.event_type(before + 1) == "supply.shortage");
  CHECK_FALSE(s.state->db().in_transaction());
  // Restocked, the same key applies the dispensing: the refusal was not remembered.
  s.receive_pending();
  auto applied = s.ops.once(request, dispense);
  REQUIRE(applied.ok());
  CHECK_FALSE(applied->replayed);
  CHECK(s.event_type(applied->answer["event_seq"].get<std::uint64_t>()) == "kit.dispensed");
}

namespace {

template <class T>
std::string problem_of(const shared::Result<T>& r) {
  return r.ok() ? "" : r.error().message;
}

// Reads an event's payload, and its sealed part, with the parsers the hub uses; "" when both read.
std::string read_back(Site& s, const std::string& type, const std::string& text) {
  auto sealed = [&](const std::string& base64) {
    auto box = crypto::from_base64(base64);
    auto plain = box ? crypto::open_sealed(s.fixture.unblinding_key(), *box) : std::nullopt;
    return plain ? crypto::to_string(*plain) : std::string("(does not open)");
  };
  using namespace shared;
  if (type == kNodeEnrolledEvent) return problem_of(parse_node_enrolled(text));
  if (type == kDirectiveAppliedEvent) return problem_of(parse_directive_applied(text));
  if (type == kSiteNoteEvent) return problem_of(parse_site_note(text));
  if (type == kScreenedEvent || type == kScreenFailedEvent) {
    auto e = parse_screened(text);
    if (e && (e->status == ParticipantStatus::screen_failed) != (type == kScreenFailedEvent)) return "status differs";
    return problem_of(e);
  }
  if (type == kRandomizedEvent) {
    auto e = parse_randomized(text);
    return e ? problem_of(parse_randomized_sealed(sealed(e->sealed))) : e.error().message;
  }
  if (type == kDispensedEvent) {
    auto e = parse_dispensed(text);
    return e ? problem_of(parse_kit_types_sealed(sealed(e->sealed))) : e.error().message;
  }
  if (type == kKitReplacedEvent) {
    auto e = parse_kit_replaced(text);
    return e ? problem_of(parse_kit_types_sealed(sealed(e->sealed))) : e.error().message;
  }
  if (type == kUnblindedEvent) {
    auto e = parse_unblinded(text);
    return e ? problem_of(parse_arm_sealed(sealed(e->sealed))) : e.error().message;
  }
  if (type == kSupplyShortageEvent) {
    auto e = parse_supply_shortage(text);
    return e ? problem_of(parse_shortage_sealed(sealed(e->sealed))) : e.error().message;
  }
  if (type == kWithdrawnEvent) return problem_of(parse_withdrawn(text));
  if (type == kCompletedEvent) return problem_of(parse_completed(text));
  if (type == kTransferRequestedEvent) return problem_of(parse_transfer_requested(text));
  if (type == kShipmentReceivedEvent) return problem_of(parse_shipment_received(text));
  if (type == kKitQuarantinedEvent) return problem_of(parse_kit_quarantined(text));
  if (type == kKitReturnedEvent) return problem_of(parse_kit_returned(text));
  if (type == kKitHandoverRequestedEvent) return problem_of(parse_kit_handover_requested(text));
  if (type == kKitDestroyedEvent) return problem_of(parse_kit_destroyed(text));
  if (type == kVisitRecordedEvent) return problem_of(parse_visit_recorded(text));
  if (type == kTemperatureExcursionEvent) return problem_of(parse_temperature_excursion(text));
  if (type == kKitsStoredEvent) return problem_of(parse_kits_stored(text));
  if (type == kKitRelabelledEvent) return problem_of(parse_kit_relabelled(text));
  return "no parser for this event type";
}

}  // namespace

TEST_CASE("every event the node writes reads back through shared/event_payloads.h, sealed parts included") {
  Site s;
  auto o = s.randomized();
  auto answers = s.yes();
  answers[0] = "no";
  REQUIRE(s.ops.screen(kCoordinator, {{{"diabetes", "no"}}, answers, "under 18"}).ok());
  auto v2 = s.ops.dispense(kCoordinator, o.participant.number, {"V2", "patient travels", "", "", "", s.sig(kCoordinator)});
  REQUIRE(v2.ok());
  REQUIRE(s.ops.dispense(kCoordinator, o.participant.number,
                         {"V1", "", o.kits[0], "damaged", "bottle cracked", s.sig(kCoordinator)})
              .ok());
  REQUIRE(s.ops.unblind(kInvestigator, o.participant.number, "anaphylaxis", s.sig(kInvestigator)).ok());
  REQUIRE(s.ops.return_kit(kCoordinator, v2->kits[0], 4).ok());
  REQUIRE(s.ops.destroy_kit(kPharmacist, v2->kits[0], "returned", s.sig(kPharmacist), s.sig(kCoordinator)).ok());
  {
    auto more = in_stock(s);
    REQUIRE(s.ops.store_kits(kCoordinator, {more[0]}, "FRIDGE-1").ok());
    REQUIRE(s.ops.report_excursion(kCoordinator, excursion({}, "FRIDGE-1")).ok());
  }
  REQUIRE(s.ops.record_visit(kCoordinator, o.participant.number, "V3", true, "in hospital").ok());
  REQUIRE(s.ops.record_visit(kCoordinator, o.participant.number, "V5", false, "").ok());
  REQUIRE(s.ops.complete(kCoordinator, o.participant.number).ok());
  REQUIRE(s.ops.withdraw(kCoordinator, s.screen(), "moved abroad", s.sig(kCoordinator)).ok());
  REQUIRE(s.ops.request_transfer(kCoordinator, s.screen(), "102", "moves to Paris").ok());
  const auto& pending = s.fixture.pending_shipment();
  REQUIRE(s.ops.receive_shipment(kCoordinator, pending.shipment_id,
                                 {{pending.kits[0].kit_number, "received"}, {pending.kits[1].kit_number, "damaged"}},
                                 s.sig(kCoordinator))
              .ok());
  REQUIRE(s.ops.quarantine(kPharmacist, pending.kits[0].kit_number, "fridge at 31 C for 3 h", 31.0).ok());
  std::string spare;
  for (const auto& [number, k] : s.state->domain().kits())
    if (k.status == shared::KitStatus::available) spare = number;
  REQUIRE(s.ops.hand_over_kits(kCoordinator, "101-N2", {spare}, "home visits").ok());
  {
    auto more = in_stock(s);
    const auto lot = s.state->domain().find_kit(more[0])->lot;
    REQUIRE(s.fixture.send(*s.state, "kits.relabel",
                           shared::KitRelabel{lot, shared::format_date(s.ops.today() + 500), {more[0]}, "stability"})
                .ok());
    REQUIRE(s.ops.confirm_relabel(kPharmacist, more[0]).ok());
  }
  s.leave_dispensable("A", 0);
  (void)s.refused_randomization();

  std::set<std::string> types;
  for (std::uint64_t seq = 1; seq <= s.state->log().last_seq(); ++seq) {
    auto e = sync::parse_event(*s.state->log().record(seq));
    REQUIRE(e.ok());
    CAPTURE(seq);
    CAPTURE(e->body.type);
    CHECK(read_back(s, e->body.type, crypto::to_string(e->body.payload)) == "");
    types.insert(e->body.type);
  }
  // Every type SiteOperations and the log write (site.note comes from 'irt-node note').
  CHECK(types == std::set<std::string>{"node.enrolled", "directive.applied", "participant.screened",
                                       "participant.screen_failed", "participant.randomized", "kit.dispensed",
                                       "kit.replaced", "participant.unblinded", "kit.returned", "kit.destroyed",
                                       "participant.completed", "participant.withdrawn",
                                       "participant.transfer_requested", "shipment.received", "kit.quarantined",
                                       "supply.shortage", "visit.recorded", "kit.stored", "kit.excursion",
                                       "kit.handover_requested", "kit.relabelled"});
}

// ---- amendments: the study version a node acts under

namespace {

json study_config(const std::string& file) {
  auto doc = test::read_file(test::source_path(file));
  auto study = json::parse(doc);
  return {{"study_id", study["id"]}, {"version", study["version"]}, {"document", doc}};
}

}  // namespace

TEST_CASE("every domain event records the study version the node acted under, and a newer study.config switches it") {
  Site s;
  auto first = s.randomized();
  CHECK(s.event(first.event_seq)["study_version"] == 1);
  CHECK(s.event(first.event_seq - 1)["study_version"] == 1);  // the screening
  REQUIRE(s.fixture.send(*s.state, "study.config", study_config("packaging/examples/study-blocks-v2.json")).ok());
  CHECK(s.study().version == 2);
  CHECK(s.study().find_site("103") != nullptr);
  auto second = s.randomized();
  CHECK(s.event(second.event_seq)["study_version"] == 2);
  CHECK(shared::parse_randomized(s.event(second.event_seq).dump()).ok());
}

TEST_CASE("an older or equal study.config leaves the node on its version, another document under its version is refused") {
  Site s;
  REQUIRE(s.fixture.send(*s.state, "study.config", study_config("packaging/examples/study-blocks-v2.json")).ok());
  REQUIRE(s.fixture.send(*s.state, "study.config", study_config("packaging/examples/study-blocks.json")).ok());
  CHECK(s.study().version == 2);
  REQUIRE(s.fixture.send(*s.state, "study.config", study_config("packaging/examples/study-blocks-v2.json")).ok());
  CHECK(s.study().version == 2);
  auto altered = study_config("packaging/examples/study-blocks-v2.json");
  auto doc = json::parse(altered["document"].get<std::string>());
  doc["name"] = "Another name";
  altered["document"] = doc.dump();
  auto refused = s.fixture.send(*s.state, "study.config", altered);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == shared::Errc::integrity);
  CHECK(s.study().name != "Another name");
}

TEST_CASE("a visit window changed by an amendment governs the next dispensing") {
  Site s;
  auto o = s.randomized();
  s.advance_days(61);  // V3: day 56, -3/+3 in version 1, -3/+5 in version 2
  REQUIRE(s.ops.record_visit(kNurse, o.participant.number, "V2", true, "participant travelled").ok());
  const node::DispenseRequest v3{"V3", "", "", "", "", {}};
  auto refused = s.ops.dispense(kPharmacist, o.participant.number, v3);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("the window is days 53 to 59") != std::string::npos);
  REQUIRE(s.fixture.send(*s.state, "study.config", study_config("packaging/examples/study-blocks-v2.json")).ok());
  auto r = s.ops.dispense(kPharmacist, o.participant.number, v3);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK_FALSE(r->deviation);
  auto e = s.event(r->event_seq);
  CHECK(e["window"] == json::array({53, 61}));
  CHECK(e["study_version"] == 2);
}

// ---- expiry windows per kit type and country, relabelling

TEST_CASE("dispensing keeps out of the do-not-dispense window of the kit type in the node's country") {
  auto study = json::parse(test::read_file(test::source_path("packaging/examples/study-blocks.json")));
  test::TempDir dir;
  auto with_exception = [&](const std::string& country) {
    for (auto& kt : study["kit_types"])
      kt["expiry_windows"] = {{"countries", {{country, {{"do_not_ship_days", 3650}, {"do_not_count_days", 3650},
                                                        {"do_not_dispense_days", 3650}}}}}};
    auto file = dir / ("study-" + country + ".json");
    test::write_file(file, study.dump());
    return file.string();
  };
  {
    test::NodeFixtureOptions o;
    o.study_file = with_exception("BE");  // another country's exception: site 101 (FR) dispenses as usual
    Site s(o);
    CHECK(s.ops.randomize(kCoordinator, s.screen(), s.sig(kCoordinator)).ok());
  }
  const auto file = with_exception("FR");  // every kit at site 101 is inside its window
  test::NodeFixtureOptions o;
  o.study_file = file;
  Site s(o);
  auto number = s.screen();
  auto before = s.state->log().last_seq();
  auto r = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::exhausted);
  CHECK(s.state->domain().find_participant(number)->status == shared::ParticipantStatus::screened);
  CHECK(s.state->log().last_seq() == before + 1);  // the shortage fact only
  CHECK(r.error().message.find("3650") == std::string::npos);  // a blinded role reads no window either
}

TEST_CASE("a kits.relabel directive gives the kits the lot's new expiry and marks them for relabelling") {
  Site s;
  // The kit inside the do-not-dispense window: relabelled to a far date it may be dispensed again.
  std::string near;
  for (const auto& [number, k] : s.state->domain().kits())
    if (k.status == node::KitStatus::available && !node::dispensable(k, s.ops.today(), s.study().supply.do_not_dispense_days) &&
        shared::parse_date(k.expiry) && *shared::parse_date(k.expiry) >= s.ops.today())
      near = number;
  REQUIRE_FALSE(near.empty());
  const auto lot = s.state->domain().find_kit(near)->lot;
  const auto far = shared::format_date(s.ops.today() + 400);
  REQUIRE(s.fixture.send(*s.state, "kits.relabel", shared::KitRelabel{lot, far, {near}, "stability data"}).ok());
  const auto* k = s.state->domain().find_kit(near);
  CHECK(k->expiry == far);
  CHECK(k->relabel == far);
  CHECK(node::dispensable(*k, s.ops.today(), s.study().supply.do_not_dispense_days));
  auto view = s.ops.inventory_view(kCoordinator, {.kit = near});
  REQUIRE(view.ok());
  CHECK((*view)["kits"][0]["relabel_expiry"] == far);
  // It survives a reload from the database.
  REQUIRE(s.state->domain().reload().ok());
  CHECK(s.state->domain().find_kit(near)->relabel == far);
  CHECK(s.fixture.send(*s.state, "kits.relabel", json{{"lot", lot}, {"expiry", "soon"}, {"kits", {near}}})
            .error()
            .code == shared::Errc::invalid_input);
}

TEST_CASE("a relabelled kit is confirmed kit by kit: a kit.relabelled event, and it leaves the list to relabel") {
  Site s;
  std::vector<std::string> stock = in_stock(s);
  REQUIRE(stock.size() >= 2);
  const auto lot = s.state->domain().find_kit(stock[0])->lot;
  const auto far = shared::format_date(s.ops.today() + 500);
  REQUIRE(s.fixture.send(*s.state, "kits.relabel", shared::KitRelabel{lot, far, {stock[0]}, "stability data"}).ok());
  const auto before = s.state->log().last_seq();
  // Only roles that handle the stock; only kits the hub asked for; nothing recorded on a refusal.
  CHECK(s.ops.confirm_relabel(kNurse, stock[0]).error().code == shared::Errc::forbidden);
  CHECK(s.ops.confirm_relabel(kPharmacist, "999999").error().code == shared::Errc::not_found);
  auto other = s.ops.confirm_relabel(kPharmacist, stock[1]);
  REQUIRE(!other.ok());
  CHECK(other.error().code == shared::Errc::conflict);
  CHECK(other.error().message.find("no new label to print") != std::string::npos);
  CHECK(s.state->log().last_seq() == before);

  auto done = s.ops.confirm_relabel(kPharmacist, stock[0]);
  REQUIRE(done.ok());
  CHECK(s.event_type(*done) == "kit.relabelled");
  auto e = s.event(*done);
  CHECK(e["kit"] == stock[0]);
  CHECK(e["expiry"] == far);
  CHECK(e["role"] == "pharmacist");
  CHECK(shared::parse_kit_relabelled(e.dump()).ok());
  const auto* k = s.state->domain().find_kit(stock[0]);
  CHECK(k->relabel.empty());
  CHECK(k->expiry == far);  // the new expiry stays
  auto view = s.ops.inventory_view(kPharmacist, {.kit = stock[0]});
  REQUIRE(view.ok());
  CHECK_FALSE((*view)["kits"][0].contains("relabel_expiry"));
  REQUIRE(s.state->domain().reload().ok());
  CHECK(s.state->domain().find_kit(stock[0])->relabel.empty());
  // Confirmed once: a second confirmation is refused.
  CHECK(s.ops.confirm_relabel(kPharmacist, stock[0]).error().code == shared::Errc::conflict);
}

// ---- custody between two nodes of the site

TEST_CASE("kits handed to another node leave the stock at once: never dispensed, quarantined or destroyed here") {
  Site s;
  std::vector<std::string> stock;
  for (const auto& [number, k] : s.state->domain().kits())
    if (node::dispensable(k, s.ops.today(), s.study().supply.do_not_dispense_days)) stock.push_back(number);
  REQUIRE(stock.size() >= 4);
  const auto before = s.state->log().last_seq();

  // Refusals change nothing and name the problem.
  CHECK(s.ops.hand_over_kits({"mona", "monitor"}, "101-N2", stock, "").error().code == shared::Errc::forbidden);
  CHECK(s.ops.hand_over_kits(kNurse, "", stock, "").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.hand_over_kits(kNurse, s.fixture.node_id(), stock, "").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.hand_over_kits(kNurse, "101-N2", {}, "").error().code == shared::Errc::invalid_input);
  CHECK(s.ops.hand_over_kits(kNurse, "101-N2", {stock[0], stock[0]}, "").error().code == shared::Errc::invalid_input);
  auto unknown = s.ops.hand_over_kits(kNurse, "101-N2", {stock[0], "999999"}, "");
  CHECK(unknown.error().code == shared::Errc::not_found);
  CHECK(unknown.error().message.find("kit 999999") != std::string::npos);
  auto pending = s.ops.hand_over_kits(kNurse, "101-N2", {s.fixture.pending_shipment().kits[0].kit_number}, "");
  CHECK(pending.error().code == shared::Errc::conflict);
  CHECK(pending.error().message.find("is expected: its shipment " + s.fixture.pending_shipment().shipment_id +
                                     " is not yet received") != std::string::npos);
  CHECK(s.state->log().last_seq() == before);
  for (const auto& n : stock) CHECK(s.state->domain().find_kit(n)->status == shared::KitStatus::available);

  // Every dispensable kit goes to the nurse's tablet.
  auto seq = s.ops.hand_over_kits(kCoordinator, "101-N2", stock, "home visits this week");
  REQUIRE_MESSAGE(seq.ok(), seq.error().message);
  CHECK(s.event_type(*seq) == "kit.handover_requested");
  auto event = s.event(*seq);
  CHECK(event["to_node"] == "101-N2");
  CHECK(event["kits"] == stock);
  CHECK(event["reason"] == "home visits this week");
  CHECK(event["role"] == "coordinator");
  CHECK(event.dump().find("kit_type") == std::string::npos);
  for (const auto& n : stock) CHECK(s.state->domain().find_kit(n)->status == shared::KitStatus::shipped);

  // In transit: no dispensing from them (the blinded shortage refusal), and
  // every operation that names one of them says where it is.
  auto refused = s.refused_randomization();
  CHECK(refused.second.code == shared::Errc::exhausted);
  for (const auto& message : {s.ops.quarantine(kPharmacist, stock[0], "fridge at 31 C", 31.0).error().message,
                              s.ops.destroy_kit(kPharmacist, stock[0], "broken", s.sig(kPharmacist)).error().message,
                              s.ops.hand_over_kits(kCoordinator, "101-N3", {stock[0]}, "").error().message}) {
    CAPTURE(message);
    CHECK(message.find("kit " + stock[0] + " is in transit to node 101-N2") != std::string::npos);
  }

  // The hub refuses the handover of the first kit: it is back in stock, with the reason.
  REQUIRE(s.fixture.send(*s.state, "kits.handover",
                         shared::KitHandover{*seq, "101-N2", {stock[0]}, "refused", "node 101-N2 is revoked"})
              .ok());
  CHECK(s.state->domain().find_kit(stock[0])->status == shared::KitStatus::available);
  CHECK(s.state->domain().find_kit(stock[0])->note.find("node 101-N2 is revoked") != std::string::npos);
  // It moves the others: they leave this node's records, also after a restart.
  std::vector<std::string> moved(stock.begin() + 1, stock.end());
  REQUIRE(s.fixture.send(*s.state, "kits.handover", shared::KitHandover{*seq, "101-N2", moved, "moved", ""}).ok());
  for (const auto& n : moved) CHECK(s.state->domain().find_kit(n) == nullptr);
  CHECK(s.fixture.open()->domain().find_kit(moved[0]) == nullptr);
  CHECK(s.fixture.send(*s.state, "kits.handover", json{{"request_seq", 1}, {"to_node", "x"}, {"kits", {stock[0]}},
                                                       {"outcome", "lost"}})
            .error()
            .code == shared::Errc::invalid_input);

  // The tablet hands one back: it comes as a shipment to receive before it counts as stock.
  const auto* gone = s.fixture.first_shipment().kits.data();
  for (const auto& k : s.fixture.first_shipment().kits)
    if (k.kit_number == moved[0]) gone = &k;
  REQUIRE(s.fixture.send(*s.state, "shipment",
                         shared::Shipment{"HND-101-N2-4", "handover", "2026-01-02", {*gone}})
              .ok());
  CHECK(s.state->domain().find_kit(moved[0])->status == shared::KitStatus::expected);
  auto expected = s.ops.quarantine(kPharmacist, moved[0], "fridge at 31 C", 31.0);
  CHECK(expected.error().message.find("kit " + moved[0] + " is expected: its shipment HND-101-N2-4 is not yet received") !=
        std::string::npos);
  REQUIRE(s.ops.receive_shipment(kCoordinator, "HND-101-N2-4", {{moved[0], "received"}}, {}).ok());
  CHECK(s.state->domain().find_kit(moved[0])->status == shared::KitStatus::available);
}

// ---- the lease (docs/randomization.md, "The lease")

namespace {

void grant_lease(Site& s, std::uint64_t id, std::int64_t until_ms) {
  shared::RandomizationLease l{id, until_ms, "renewed at sync"};
  REQUIRE(s.fixture.send(*s.state, std::string(shared::kGrantLeaseDirective), json(l)).ok());
}

}  // namespace

TEST_CASE("once its lease has ended the node refuses randomization asking for a sync, and changes nothing") {
  Site s;
  const auto until = s.now + 86400000;
  grant_lease(s, 1, until);
  s.randomized();  // inside the lease
  s.now = until;   // the lease ends at its time
  auto number = s.screen();  // screening goes on
  const auto seq = s.state->log().last_seq();
  const auto free = s.state->domain().free_slots_by_stratum();
  auto r = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == shared::Errc::exhausted);
  CHECK(r.error().message.find("may not randomize until it syncs") != std::string::npos);
  CHECK(r.error().message.find(shared::utc_text(until)) != std::string::npos);
  CHECK(r.error().message.find("sync with the hub, then randomize again") != std::string::npos);
  for (const auto& arm : s.study().arms) CHECK(r.error().message.find(arm.name) == std::string::npos);
  CHECK(s.state->log().last_seq() == seq);
  CHECK(s.state->domain().free_slots_by_stratum() == free);
  CHECK(s.state->domain().find_participant(number)->status == node::ParticipantStatus::screened);
  // Refused before the signature: a wrong password is not what the user hears about first.
  CHECK(s.ops.randomize(kCoordinator, number, s.sig(kCoordinator, "wrong")).error().code == shared::Errc::exhausted);
  // A renewed lease (the next sync) lets it randomize again; a replayed older one changes nothing.
  grant_lease(s, 2, until + 14 * 86400000LL);
  grant_lease(s, 1, until);
  CHECK(s.state->domain().lease()->lease_id == 2);
  auto again = s.ops.randomize(kCoordinator, number, s.sig(kCoordinator));
  REQUIRE_MESSAGE(again.ok(), (again.ok() ? "" : again.error().message));
  // The lease is kept across a reload.
  REQUIRE(s.state->domain().reload().ok());
  CHECK(s.state->domain().lease()->until_ms == until + 14 * 86400000LL);
}

TEST_CASE("a return shipment to a depot takes rejected, returned, damaged or expired kits, all or nothing") {
  Site s;
  const auto dispensed = s.randomized().kits.at(0);
  std::vector<std::string> stock;
  for (const auto& [number, k] : s.state->domain().kits())
    if (node::dispensable(k, s.ops.today(), s.study().supply.do_not_dispense_days)) stock.push_back(number);
  REQUIRE(stock.size() >= 3);
  REQUIRE(s.fixture.send(*s.state, "kits.reject", shared::KitDecision{1, {stock[0], stock[1]}, "lot recalled"}).ok());
  const std::string depot = s.study().depots.at(0).id;
  const auto before = s.state->log().last_seq();
  using R = SiteOperations::ReturnShipment;

  // Refusals change nothing and name the problem.
  const auto signer = s.sig(kCoordinator);
  CHECK(s.ops.ship_return(kNurse, R{depot, {stock[0]}, "", "", ""}, s.sig(kNurse)).error().code ==
        shared::Errc::forbidden);
  CHECK(s.ops.ship_return(kCoordinator, R{"XX", {stock[0]}, "", "", ""}, signer).error().code ==
        shared::Errc::invalid_input);
  CHECK(s.ops.ship_return(kCoordinator, R{depot, {}, "", "", ""}, signer).error().code == shared::Errc::invalid_input);
  CHECK(s.ops.ship_return(kCoordinator, R{depot, {stock[0], stock[0]}, "", "", ""}, signer).error().code ==
        shared::Errc::invalid_input);
  auto unknown = s.ops.ship_return(kCoordinator, R{depot, {stock[0], "999999"}, "", "", ""}, signer);
  CHECK(unknown.error().code == shared::Errc::not_found);
  auto usable = s.ops.ship_return(kCoordinator, R{depot, {stock[0], stock[2]}, "", "", ""}, signer);
  CHECK(usable.error().code == shared::Errc::conflict);
  CHECK(usable.error().message.find("kit " + stock[2] + " is available") != std::string::npos);
  auto given = s.ops.ship_return(kCoordinator, R{depot, {stock[0], dispensed}, "", "", ""}, signer);
  CHECK(given.error().code == shared::Errc::conflict);
  CHECK(given.error().message.find("kit " + dispensed + " is dispensed") != std::string::npos);
  CHECK(s.state->domain().find_kit(stock[0])->status == shared::KitStatus::rejected);
  CHECK(s.state->log().last_seq() == before);

  // Signed by the sender: without a signature, or with a wrong password, nothing is sent.
  auto unsigned_return = s.ops.ship_return(kCoordinator, R{depot, {stock[0], stock[1]}, "", "", ""}, {});
  CHECK(unsigned_return.error().code == shared::Errc::invalid_input);
  CHECK(unsigned_return.error().message.find("signature_password") != std::string::npos);
  CHECK(s.ops.ship_return(kCoordinator, R{depot, {stock[0], stock[1]}, "", "", ""}, s.sig(kCoordinator, "wrong"))
            .error().code == shared::Errc::unauthenticated);
  CHECK(s.state->log().last_seq() == before);

  auto seq = s.ops.ship_return(kCoordinator, R{depot, {stock[0], stock[1]}, "recall", "DHL", "R-1"}, signer);
  REQUIRE_MESSAGE(seq.ok(), seq.error().message);
  CHECK(s.event_type(*seq) == "kit.return_shipped");
  auto event = s.event(*seq);
  CHECK(event["depot"] == depot);
  CHECK(event["kits"] == std::vector<std::string>{stock[0], stock[1]});
  CHECK(event["tracking"] == "R-1");
  CHECK(event.dump().find("kit_type") == std::string::npos);
  CHECK(event["esignature"]["meaning"] ==
        "I confirm the return of kits " + stock[0] + ", " + stock[1] + " to depot " + depot);
  // The node lists the return shipment under the hub's id; its kits name it.
  const auto id = node::return_shipment_id(s.state->enrollment().node_id, *seq);
  REQUIRE(s.state->domain().shipments().count(id) == 1);
  const auto& shipped = s.state->domain().shipments().at(id);
  CHECK(shipped.kind == "return");
  CHECK(shipped.depot == depot);
  CHECK(shipped.tracking == "R-1");
  for (const auto& n : {stock[0], stock[1]}) {
    CHECK(s.state->domain().find_kit(n)->status == shared::KitStatus::shipped);
    CHECK(s.state->domain().find_kit(n)->shipment == id);
  }
  REQUIRE(s.state->domain().reload().ok());  // kept, and its rows still authenticate
  CHECK(s.state->domain().shipments().at(id).courier == "DHL");
  // On its way: not sent twice, never destroyed here.
  auto twice = s.ops.ship_return(kCoordinator, R{depot, {stock[0]}, "", "", ""}, signer);
  CHECK(twice.error().message.find("sent back to depot " + depot) != std::string::npos);
  CHECK(s.ops.destroy_kit(kPharmacist, stock[0], "broken", s.sig(kPharmacist)).error().code == shared::Errc::conflict);
}

TEST_CASE("after the lease ends dispensing, visits, code breaks, withdrawal and kit handling go on") {
  Site s;
  auto [a, b] = s.one_per_arm();
  grant_lease(s, 1, s.now + 86400000);
  s.advance_days(27);  // the lease ended 26 days ago; visit V2 is due
  auto dispensed = s.ops.dispense(kPharmacist, a.participant.number, {"V2", "", "", "", "", {}});
  REQUIRE_MESSAGE(dispensed.ok(), (dispensed.ok() ? "" : dispensed.error().message));
  CHECK(dispensed->kits.size() == 1);
  REQUIRE(s.ops.unblind(kInvestigator, b.participant.number, "anaphylaxis", s.sig(kInvestigator)).ok());
  REQUIRE(s.ops.withdraw(kCoordinator, b.participant.number, "moved abroad", s.sig(kCoordinator)).ok());
  s.receive_pending();
  auto kit = s.fixture.pending_shipment().kits.front().kit_number;
  REQUIRE(s.ops.quarantine(kPharmacist, kit, "fridge at 31 C for 3 h", 31.0).ok());
  REQUIRE(s.ops.request_transfer(kCoordinator, s.screen(), "102", "moves to Paris").ok());
  // Only randomization waits for the sync.
  CHECK(s.ops.randomize(kCoordinator, s.screen(), s.sig(kCoordinator)).error().code == shared::Errc::exhausted);
}

TEST_CASE("a node that holds no lease (a hub without leases) randomizes as before") {
  Site s;
  CHECK_FALSE(s.state->domain().lease().has_value());
  s.advance_days(20);
  s.randomized();
}
