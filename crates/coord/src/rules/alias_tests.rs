//! Mirrored aliases, flips, pins, compare-and-swap and history, without I/O.

use quiver_common::{CollectionSchema, Metric, compose_ts};

use super::apply;
use crate::command::{Actor, AliasChange, MetaCommand, MetaResponse};
use crate::error::RuleError;
use crate::state::{ALIAS_HISTORY, AliasMeta, MetaState};

const AT_MS: u64 = 1_700_000_000_000;

fn run(state: &mut MetaState, cmd: MetaCommand) -> Result<MetaResponse, RuleError> {
    let before = state.clone();
    let out = apply(state, &cmd, compose_ts(AT_MS, 0));
    if out.is_err() {
        assert_eq!(
            *state, before,
            "a rejected command leaves the state untouched"
        );
    }
    out
}

fn create(state: &mut MetaState, name: &str, dim: u32, shards: u32, metric: Metric) {
    let cmd = MetaCommand::CreateCollection {
        schema: CollectionSchema::simple(name, dim),
        shards,
        metric,
        index: None,
        partitions: None,
    };
    run(state, cmd).expect("create");
}

fn admin(change: AliasChange, by: &str, reason: &str) -> MetaCommand {
    MetaCommand::AliasAdmin {
        change,
        actor: Actor::new(by, reason),
    }
}

fn mirror(alias: &str, primary: &str, standby: &str) -> MetaCommand {
    admin(
        AliasChange::Mirror {
            alias: alias.into(),
            primary: primary.into(),
            standby: standby.into(),
            auto_failover: true,
            max_lag_ms: 500,
        },
        "sre",
        "set up",
    )
}

fn flip(alias: &str, expect: Option<&str>, reason: &str) -> MetaCommand {
    admin(
        AliasChange::Flip {
            alias: alias.into(),
            expect: expect.map(str::to_string),
        },
        "sre",
        reason,
    )
}

fn alias(state: &MetaState, name: &str) -> AliasMeta {
    state.alias(name).expect("alias exists")
}

fn pair() -> MetaState {
    let mut s = MetaState::default();
    create(&mut s, "feed_a", 8, 2, Metric::Cosine);
    create(&mut s, "feed_b", 8, 2, Metric::Cosine);
    s
}

#[test]
fn mirror_creates_the_alias_on_its_primary_and_records_it() {
    let mut s = pair();
    let MetaResponse::AliasSet { epoch } =
        run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror")
    else {
        panic!("expected an epoch")
    };
    let a = alias(&s, "feed");
    assert_eq!(a.collection, "feed_a");
    assert_eq!(a.epoch, epoch);
    let m = a.mirror.as_ref().expect("mirrored");
    assert_eq!(
        (m.primary.as_str(), m.standby.as_str()),
        ("feed_a", "feed_b")
    );
    assert!(m.auto_failover && !m.pinned);
    assert_eq!(m.max_lag_ms, 500);
    let ev = a.history.last().expect("history");
    assert_eq!(
        (ev.action.as_str(), ev.from.as_deref(), ev.to.as_str()),
        ("mirror", None, "feed_a")
    );
    assert_eq!(
        (ev.by.as_str(), ev.reason.as_str(), ev.at_ms),
        ("sre", "set up", AT_MS)
    );
    assert_eq!(s.collection("feed").expect("resolves").name, "feed_a");
}

#[test]
fn mirror_refuses_collections_of_different_shapes() {
    let mut s = pair();
    create(&mut s, "dim16", 16, 2, Metric::Cosine);
    create(&mut s, "l2", 8, 2, Metric::L2);
    create(&mut s, "one_shard", 8, 1, Metric::Cosine);
    for (standby, what) in [
        ("dim16", "schema"),
        ("l2", "metric"),
        ("one_shard", "shard count"),
    ] {
        let e = run(&mut s, mirror("feed", "feed_a", standby)).expect_err(standby);
        assert!(
            e.to_string().contains(&format!("{what} differs")) && e.to_string().contains("standby"),
            "{e}"
        );
    }
    let e = run(&mut s, mirror("feed", "feed_a", "feed_a")).expect_err("same");
    assert!(e.to_string().contains("must differ"), "{e}");
    let e = run(&mut s, mirror("feed", "feed_a", "nope")).expect_err("missing");
    assert!(matches!(e, RuleError::CollectionNotFound(_)), "{e}");
    let e = run(&mut s, mirror("feed_b", "feed_a", "dim16")).expect_err("name taken");
    assert!(e.to_string().contains("differs"), "{e}");
    assert!(s.aliases().is_empty());
}

#[test]
fn flip_moves_the_target_with_a_new_epoch_and_honours_expect() {
    let mut s = pair();
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    let e0 = alias(&s, "feed").epoch;
    let e = run(&mut s, flip("feed", Some("feed_b"), "stale")).expect_err("cas");
    assert!(
        e.to_string().contains("invalid expect") && e.to_string().contains("targets \"feed_a\""),
        "{e}"
    );
    run(&mut s, flip("feed", Some("feed_a"), "primary down")).expect("flip");
    let a = alias(&s, "feed");
    assert_eq!(a.collection, "feed_b");
    assert!(a.epoch > e0);
    let ev = a.history.last().expect("event");
    assert_eq!(
        (
            ev.action.as_str(),
            ev.from.as_deref(),
            ev.to.as_str(),
            ev.reason.as_str()
        ),
        ("flip", Some("feed_a"), "feed_b", "primary down")
    );
    run(&mut s, flip("feed", None, "failback")).expect("flip back");
    let a = alias(&s, "feed");
    assert_eq!(a.collection, "feed_a");
    let flips: Vec<_> = a.history.iter().filter(|e| e.action == "flip").collect();
    assert_eq!(flips.len(), 2, "history keeps both flips");
}

#[test]
fn only_a_mirrored_alias_flips_or_pins() {
    let mut s = pair();
    run(
        &mut s,
        MetaCommand::CreateAlias {
            alias: "plain".into(),
            collection: "feed_a".into(),
        },
    )
    .expect("alias");
    let e = run(&mut s, flip("plain", None, "x")).expect_err("not mirrored");
    assert!(e.to_string().contains("not mirrored"), "{e}");
    let pin = admin(
        AliasChange::Pin {
            alias: "plain".into(),
            pinned: true,
        },
        "sre",
        "",
    );
    assert!(
        run(&mut s, pin)
            .expect_err("not mirrored")
            .to_string()
            .contains("not mirrored")
    );
    let e = run(&mut s, flip("nope", None, "x")).expect_err("missing");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn pin_and_unpin_keep_the_target_and_are_recorded() {
    let mut s = pair();
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    for pinned in [true, false] {
        let cmd = admin(
            AliasChange::Pin {
                alias: "feed".into(),
                pinned,
            },
            "sre",
            "maintenance",
        );
        run(&mut s, cmd).expect("pin");
        let a = alias(&s, "feed");
        assert_eq!(a.mirror.as_ref().map(|m| m.pinned), Some(pinned));
        assert_eq!(a.collection, "feed_a");
        let action = a.history.last().map(|e| e.action.as_str());
        assert_eq!(action, Some(if pinned { "pin" } else { "unpin" }));
    }
    // Mirroring again keeps the pin state and the target.
    run(&mut s, flip("feed", None, "x")).expect("flip");
    let pin = admin(
        AliasChange::Pin {
            alias: "feed".into(),
            pinned: true,
        },
        "sre",
        "",
    );
    run(&mut s, pin).expect("pin");
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror again");
    let a = alias(&s, "feed");
    assert_eq!(a.collection, "feed_b");
    assert_eq!(a.mirror.as_ref().map(|m| m.pinned), Some(true));
}

#[test]
fn alter_with_expect_is_compare_and_swap_and_stays_inside_a_mirror() {
    let mut s = pair();
    create(&mut s, "other", 8, 2, Metric::Cosine);
    let alter = |collection: &str, expect: Option<&str>| {
        admin(
            AliasChange::Alter {
                alias: "feed".into(),
                collection: collection.into(),
                expect: expect.map(str::to_string),
            },
            "sre",
            "",
        )
    };
    let e = run(&mut s, alter("feed_a", Some("feed_b"))).expect_err("no alias yet");
    assert!(e.to_string().contains("does not exist"), "{e}");
    run(&mut s, alter("feed_a", None)).expect("creates");
    assert_eq!(alias(&s, "feed").history[0].action, "create");
    let e = run(&mut s, alter("feed_b", Some("other"))).expect_err("cas");
    assert!(e.to_string().contains("invalid expect"), "{e}");
    run(&mut s, alter("feed_b", Some("feed_a"))).expect("cas holds");
    assert_eq!(alias(&s, "feed").collection, "feed_b");
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    assert_eq!(
        alias(&s, "feed").collection,
        "feed_b",
        "mirroring keeps a target of the pair"
    );
    let e = run(&mut s, alter("other", None)).expect_err("outside the pair");
    assert!(e.to_string().contains("can only target one of them"), "{e}");
    let milvus_alter = MetaCommand::AlterAlias {
        alias: "feed".into(),
        collection: "other".into(),
    };
    assert!(
        run(&mut s, milvus_alter).is_err(),
        "Milvus's AlterAlias too"
    );
    let milvus_alter = MetaCommand::AlterAlias {
        alias: "feed".into(),
        collection: "feed_a".into(),
    };
    run(&mut s, milvus_alter).expect("inside the pair");
    let ev = alias(&s, "feed").history.last().cloned().expect("event");
    assert_eq!(
        (ev.by.as_str(), ev.action.as_str()),
        ("milvus-api", "alter")
    );
}

#[test]
fn a_mirrored_collection_cannot_be_dropped() {
    let mut s = pair();
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    let drop = MetaCommand::DropCollection {
        name: "feed_b".into(),
    };
    let e = run(&mut s, drop).expect_err("standby");
    assert!(e.to_string().contains("still has aliases"), "{e}");
}

#[test]
fn history_is_bounded() {
    let mut s = pair();
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    for i in 0..ALIAS_HISTORY + 10 {
        run(&mut s, flip("feed", None, &format!("flip {i}"))).expect("flip");
    }
    let a = alias(&s, "feed");
    assert_eq!(a.history.len(), ALIAS_HISTORY);
    assert_eq!(
        a.history.last().map(|e| e.reason.clone()),
        Some(format!("flip {}", ALIAS_HISTORY + 9))
    );
    assert_eq!(a.history.last().map(|e| e.epoch), Some(a.epoch));
}

#[test]
fn an_alias_keeps_its_collections_by_id_and_shows_them_by_name() {
    let mut s = pair();
    run(&mut s, mirror("feed", "feed_a", "feed_b")).expect("mirror");
    let id = |name: &str| s.collection(name).map(|c| c.id).expect("collection");
    let record = s.alias_record("feed").expect("record");
    let m = record.mirror.expect("mirrored");
    assert_eq!(
        (record.target, m.primary, m.standby),
        (id("feed_a"), id("feed_a"), id("feed_b"))
    );
    assert_eq!(s.mirror_partner(id("feed_b")), Some(id("feed_a")));
    assert!(s.is_mirror_target(id("feed_a")) && !s.is_mirror_target(id("feed_b")));
    run(&mut s, flip("feed", Some("feed_a"), "drill")).expect("flip");
    let shown = alias(&s, "feed");
    assert_eq!(shown.collection, "feed_b");
    let pair = shown.mirror.expect("mirrored");
    assert_eq!(
        (pair.primary.as_str(), pair.standby.as_str()),
        ("feed_a", "feed_b")
    );
    assert_eq!(s.resolve("feed"), Some("feed_b"));
    let last = shown.history.last().expect("history");
    assert_eq!(
        (last.from.as_deref(), last.to.as_str()),
        (Some("feed_a"), "feed_b")
    );
}
