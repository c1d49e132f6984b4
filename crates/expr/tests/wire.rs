//! Compiled filters as bytes: what a remote querynode decodes evaluates like
//! the original, and bad bytes are refused with a clear error.

mod support;

use quiver_api::RowPredicate;
use quiver_common::{CollectionSchema, DataType, FieldSchema};
use quiver_expr::{CompiledFilter, ExprError, MAX_DEPTH, compile, parse};
use support::{filter, ids_of};

fn round_trip(f: &CompiledFilter) -> CompiledFilter {
    let bytes = f.encode().expect("a compiled filter encodes");
    CompiledFilter::decode(&bytes).expect("decode")
}

#[test]
fn decoded_filters_select_the_same_rows_and_keys() {
    for text in [
        "age > 20",
        "10 < age <= 40",
        "name like 'b%' or name like '%rry' or name like '5_\\% off'",
        "name like '%an%' and not flag",
        "age in [10, 30, 50] and tag not in ['red']",
        "score is null or score > 2.0",
        "meta['color'] == 'red' or meta['arr'][0] == 4",
        "city == 'paris' and pop > 2",
        "(age + 5) * 2 % 7 == 1 or -age < -35",
        "flag == (age > 20)",
        "id in [3, 1, 3]",
        "id == 2 or id in [4]",
        "true",
    ] {
        let f = filter(text);
        let back = round_trip(&f);
        assert_eq!(ids_of(&back), ids_of(&f), "{text}");
        assert_eq!(back.primary_keys(), f.primary_keys(), "{text}");
    }
}

/// The deepest tree the parser accepts, in the two shapes that make the
/// compiled tree deepest, still decodes.
#[test]
fn the_deepest_accepted_filters_decode() {
    let mut schema = CollectionSchema::simple("c", 2);
    schema.fields.push(FieldSchema::new("b", DataType::Bool));
    schema.fields.push(FieldSchema::new("n", DataType::Int64));
    let deepest = |make: &dyn Fn(usize) -> String| {
        (1..=MAX_DEPTH)
            .rev()
            .find_map(|d| {
                let e = parse(&make(d)).ok()?;
                compile(&e, &schema, &Default::default()).ok()
            })
            .expect("some depth compiles")
    };
    let nested_eq = |d: usize| format!("{}b{}", "b == (".repeat(d), ")".repeat(d));
    let nots = |d: usize| format!("{}b", "not ".repeat(d));
    let sums = |d: usize| format!("n{} > 0", " + 1".repeat(d));
    for f in [deepest(&nested_eq), deepest(&nots), deepest(&sums)] {
        let back = round_trip(&f);
        assert_eq!(back.encode(), f.encode());
    }
}

fn decode_err(bytes: &[u8]) -> String {
    match CompiledFilter::decode(bytes) {
        Ok(_) => panic!("{bytes:?} decoded"),
        Err(e) => {
            assert!(matches!(e, ExprError::Decode(_)), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn bad_bytes_are_refused() {
    let good = filter("age > 20").encode().expect("encode");
    assert!(decode_err(&[]).contains("empty"));
    let mut other_version = good.clone();
    other_version[0] = 99;
    assert!(decode_err(&other_version).contains("version 99"));
    assert!(decode_err(&good[..good.len() - 1]).contains("invalid"));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(decode_err(&trailing).contains("trailing"));
    let err: quiver_common::Error = ExprError::Decode("x".into()).into();
    assert_eq!(err.kind(), quiver_common::ErrorKind::InvalidArgument);
}

/// A hostile tree nested far deeper than any expression is refused while
/// decoding, without exhausting the stack.
#[test]
fn hostile_nesting_is_refused() {
    let one = filter("not flag").encode().expect("encode");
    let two = filter("not not flag").encode().expect("encode");
    // `two` is `one` with the `not` prefix repeated once.
    let prefix_len = two.len() - one.len();
    let prefix = &two[1..1 + prefix_len];
    assert_eq!(&two[1 + prefix_len..], &one[1..]);
    let mut hostile = vec![one[0]];
    for _ in 0..200_000 {
        hostile.extend_from_slice(prefix);
    }
    hostile.extend_from_slice(&one[1..]);
    assert!(decode_err(&hostile).contains("nested deeper"));
    // The depth counter is reset: a good filter still decodes afterwards.
    assert!(CompiledFilter::decode(&one).is_ok());
}

/// A front door that stores the dynamic field under another column renames
/// it in the filter itself, so the renaming crosses the wire.
#[test]
fn a_renamed_field_survives_encoding() {
    use std::collections::HashMap;

    use quiver_common::{PrimaryKey, ScalarValue};
    use support::Row;

    let row = |id: i64, city: &str| Row {
        pk: PrimaryKey::Int(id),
        fields: HashMap::from([
            ("age".to_string(), ScalarValue::Int(id)),
            (
                "hidden".to_string(),
                ScalarValue::Json(format!(r#"{{"city":"{city}"}}"#)),
            ),
        ]),
    };
    let rows = [row(1, "paris"), row(2, "rome"), row(3, "paris")];
    let pass = |f: &CompiledFilter| -> Vec<i64> {
        rows.iter()
            .filter(|r| f.eval(*r))
            .map(|r| match r.pk {
                PrimaryKey::Int(i) => i,
                PrimaryKey::Str(_) => -1,
            })
            .collect()
    };
    // `city` is a dynamic key: the filter reads `$meta["city"]`.
    let f = filter("city == 'paris' and age > 0");
    assert!(pass(&f).is_empty());
    let renamed = f.rename_field("$meta", "hidden");
    assert_eq!(pass(&renamed), [1, 3]);
    assert_eq!(pass(&round_trip(&renamed)), [1, 3]);
}
