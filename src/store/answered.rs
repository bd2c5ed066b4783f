//! The label export's scan: every answered, adjudicated or auto-accepted item of a project
//! (gold items left out), one annotation per row, grouped by item.
use super::{Result, StoreError};
use rusqlite::Connection;

/// One annotation of an item (None when the item only has a resolution), with the item's
/// latest prediction and resolution.
pub struct Answered {
    pub item: i64,
    pub ext_id: String,
    pub text: String,
    pub who: Option<String>,
    pub value: Option<serde_json::Value>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub resolution: Option<(String, serde_json::Value)>,
    /// The resolution is a prediction of the project's rules (auto-accepted), not of a model.
    pub resolved_by_rules: bool,
    /// Instruction projects: the record under review.
    pub record: Option<String>,
}

/// Calls `each` with every answered item's rows, oldest annotation first, in item order;
/// one item's rows are in memory at a time.
pub fn for_each_item(
    c: &Connection,
    project_id: i64,
    mut each: impl FnMut(&[Answered]) -> Result<()>,
) -> Result<()> {
    let mut stmt = c.prepare(
        "SELECT i.id, i.ext_id, i.text, u.name, a.value, p.model_id, p.prompt_version, r.source, r.value, i.prompt,
           substr(rp.model_id, 1, 6) = 'rules@'
         FROM items i
         LEFT JOIN annotations a ON a.item_id = i.id
         LEFT JOIN users u ON u.id = a.user_id
         LEFT JOIN predictions p ON p.id = (SELECT MAX(id) FROM predictions WHERE item_id = i.id)
         LEFT JOIN resolutions r ON r.id = (SELECT MAX(id) FROM resolutions WHERE item_id = i.id)
         LEFT JOIN predictions rp ON rp.id = r.prediction_id
         WHERE i.project_id = ?1 AND i.gold IS NULL AND (a.id IS NOT NULL OR r.id IS NOT NULL)
         ORDER BY i.id, a.id",
    )?;
    let mut rows = stmt.query([project_id])?;
    let json = |s: Option<String>| -> Result<Option<serde_json::Value>> {
        s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    };
    let mut group: Vec<Answered> = Vec::new();
    while let Some(r) = rows.next()? {
        let resolution = match (r.get::<_, Option<String>>(7)?, json(r.get(8)?)?) {
            (Some(s), Some(v)) => Some((s, v)),
            _ => None,
        };
        let row = Answered {
            item: r.get(0)?,
            ext_id: r.get(1)?,
            text: r.get(2)?,
            who: r.get(3)?,
            value: json(r.get(4)?)?,
            model: r.get(5)?,
            prompt_version: r.get(6)?,
            resolution,
            record: r.get(9)?,
            resolved_by_rules: r.get::<_, Option<bool>>(10)?.unwrap_or(false),
        };
        if group.first().is_some_and(|g| g.item != row.item) {
            each(&group)?;
            group.clear();
        }
        group.push(row);
    }
    if !group.is_empty() {
        each(&group)?;
    }
    Ok(())
}
