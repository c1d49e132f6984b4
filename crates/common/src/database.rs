//! Databases as names: a collection or alias of database `db` is known
//! everywhere behind the front door as `db.name`; one of the default database
//! keeps its plain name (so data dirs written before databases existed hold
//! default-database collections unchanged). Names hold only letters, digits
//! and `_`, so the `.` is never ambiguous.

use crate::Result;
use crate::schema::validate_name;

/// The database every collection without one belongs to (Milvus's).
pub const DEFAULT_DATABASE: &str = "default";

/// The name a collection or alias `name` of database `db` is known by.
pub fn qualify(db: &str, name: &str) -> String {
    if db.is_empty() || db == DEFAULT_DATABASE {
        name.to_string()
    } else {
        format!("{db}.{name}")
    }
}

/// (database, name) of a qualified name.
pub fn split_qualified(qualified: &str) -> (&str, &str) {
    match qualified.split_once('.') {
        Some((db, name)) => (db, name),
        None => (DEFAULT_DATABASE, qualified),
    }
}

/// Checks both parts of a qualified name: the database's (`db_name`) and
/// the name's (`field`).
pub fn validate_qualified(field: &str, qualified: &str) -> Result<()> {
    let (db, name) = split_qualified(qualified);
    if db != DEFAULT_DATABASE {
        validate_name("db_name", db)?;
    }
    validate_name(field, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_database_names_stay_plain() {
        assert_eq!(qualify("", "c"), "c");
        assert_eq!(qualify("default", "c"), "c");
        assert_eq!(split_qualified("c"), ("default", "c"));
        assert_eq!(qualify("db1", "c"), "db1.c");
        assert_eq!(split_qualified("db1.c"), ("db1", "c"));
        assert!(validate_qualified("collection_name", "db1.c").is_ok());
        assert!(validate_qualified("collection_name", "db 1.c").is_err());
        assert!(validate_qualified("collection_name", "db1.c.d").is_err());
        assert!(validate_qualified("collection_name", "1c").is_err());
    }
}
