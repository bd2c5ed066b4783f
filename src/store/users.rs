//! People, their roles, passwords (argon2) and API tokens (stored as sha256 only).
use super::{audit, none_if_missing, now_ms, Actor, Result, StoreError};
use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    /// An annotator who also settles disagreements in the adjudication queue of their projects.
    Reviewer,
    Annotator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Annotator => "annotator",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "reviewer" => Ok(Role::Reviewer),
            "annotator" => Ok(Role::Annotator),
            other => Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the user may adjudicate (in the projects they can see).
    pub fn can_review(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Reviewer)
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;

fn row_to_user(r: &rusqlite::Row) -> rusqlite::Result<(i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn to_user((id, name, role): (i64, String, String)) -> Result<User> {
    Ok(User {
        id,
        name,
        role: Role::parse(&role)?,
    })
}

pub fn create(
    tx: &Transaction,
    actor: &Actor,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(StoreError::invalid(
            "name",
            "1 to 64 characters without spaces",
        ));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::invalid(
            "password",
            format!("at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| StoreError::invalid("password", e.to_string()))?
        .to_string();
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::Conflict(format!(
            "user {name:?} already exists"
        )));
    }
    tx.execute(
        "INSERT INTO users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, role.as_str(), hash, now_ms()],
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        actor,
        "user.create",
        &format!("user:{id}"),
        &serde_json::json!({"name": name, "role": role}),
    )?;
    Ok(User {
        id,
        name: name.to_string(),
        role,
    })
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn get(conn: &Connection, id: i64) -> Result<User> {
    conn.query_row(
        "SELECT id, name, role FROM users WHERE id = ?1",
        [id],
        row_to_user,
    )
    .optional()?
    .map(to_user)
    .unwrap_or_else(|| Err(StoreError::NotFound(format!("user {id}"))))
}

pub fn by_name(conn: &Connection, name: &str) -> Result<User> {
    conn.query_row(
        "SELECT id, name, role FROM users WHERE name = ?1",
        [name],
        row_to_user,
    )
    .optional()?
    .map(to_user)
    .unwrap_or_else(|| Err(StoreError::NotFound(format!("user {name:?}"))))
}

pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn.prepare("SELECT id, name, role FROM users ORDER BY id")?;
    let rows = stmt.query_map([], row_to_user)?;
    rows.map(|r| to_user(r?)).collect()
}

/// The user if the password is right; `None` for an unknown name or a wrong password alike.
pub fn verify_password(conn: &Connection, name: &str, password: &str) -> Result<Option<User>> {
    let row: Option<(i64, String, String, String)> = conn
        .query_row(
            "SELECT id, name, role, password_hash FROM users WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map(Some)
        .or_else(none_if_missing)?;
    let Some((id, name, role, hash)) = row else {
        return Ok(None);
    };
    let parsed = PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Ok(None);
    }
    to_user((id, name, role)).map(Some)
}

fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A new API token for the user, returned once; only its hash is kept.
pub fn create_token(tx: &Transaction, actor: &Actor, user_id: i64) -> Result<String> {
    let user = get(tx, user_id)?;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "wick_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    tx.execute(
        "INSERT INTO tokens (user_id, hash, created_at) VALUES (?1, ?2, ?3)",
        params![user.id, token_hash(&token), now_ms()],
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        actor,
        "token.create",
        &format!("user:{}", user.id),
        &serde_json::json!({"token_id": id}),
    )?;
    Ok(token)
}

pub fn by_token(conn: &Connection, token: &str) -> Result<Option<User>> {
    let row = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.role FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        )?
        .query_row([token_hash(token)], row_to_user)
        .optional()?;
    row.map(to_user).transpose()
}
