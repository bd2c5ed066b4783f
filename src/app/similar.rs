//! Similar items: "more like this" for an item, and a search by meaning for a free text, over
//! the project's stored sentence embeddings (never recomputed here).
//!
//! Each project's embeddings are held in memory, int8-packed (`vectors`), one index per project
//! and embedder: 384 bytes a vector, about 400 MB at a million items. An index loads on its
//! first query and then reads only the rows written since (`embeddings.seq`), so items
//! pre-labeled after the load are found on the next query. The int8 scores choose 2k
//! candidates; their similarity is recomputed from the stored f32 vectors and the best k kept.
use super::{blocking, App, AppError};
use crate::store::{items, learning, projects, users::User, StoreError};
use crate::vectors::PackedVectors;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Rows read per page while an index catches up.
const PAGE: usize = 4096;

#[derive(Debug, Serialize)]
pub struct Neighbour {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    /// Cosine of the two embeddings, from the stored vectors.
    pub similarity: f64,
}

#[derive(Debug, Serialize)]
pub struct Similar {
    pub items: Vec<Neighbour>,
    /// Items of the project that have an embedding from this embedder (the ones searched).
    pub searched: usize,
    pub embedder: String,
}

/// One project's vectors from one embedder, and how far into `embeddings.seq` they are read.
struct Index {
    project_id: i64,
    embedder: String,
    /// Held while catching up, so two queries do not both read the same rows.
    mark: Mutex<Option<i64>>,
    vectors: RwLock<PackedVectors>,
}

/// The server's indexes, by (project, embedder).
#[derive(Default)]
pub struct SimilarIndexes {
    by: Mutex<HashMap<(i64, String), Arc<Index>>>,
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("the similar-items index was poisoned by a panic".into())
}

impl SimilarIndexes {
    /// The `k` items of `project_id` nearest to `query` among `embedder`'s vectors, `skip`
    /// left out; the index is loaded or caught up first.
    pub fn search(
        &self,
        conn: &Connection,
        project_id: i64,
        embedder: &str,
        query: &[f32],
        k: usize,
        skip: Option<i64>,
    ) -> crate::store::Result<Similar> {
        let index = self
            .by
            .lock()
            .map_err(|_| poisoned())?
            .entry((project_id, embedder.to_string()))
            .or_insert_with(|| {
                Arc::new(Index {
                    project_id,
                    embedder: embedder.to_string(),
                    mark: Mutex::new(None),
                    vectors: RwLock::default(),
                })
            })
            .clone();
        index.nearest(conn, query, k, skip)
    }
}

impl Index {
    /// Reads what was written since the last look (everything, the first time).
    fn catch_up(&self, conn: &Connection) -> crate::store::Result<()> {
        let mut mark = self.mark.lock().map_err(|_| poisoned())?;
        let mut seq = match *mark {
            Some(seq) => seq,
            None => {
                // The mark is read first: a row written during the load is read again next
                // time, which replaces it with itself. The load builds a new set, so queries
                // already holding the old one are not blocked meanwhile.
                let seq = learning::max_embedding_seq(conn)?;
                let mut loaded = PackedVectors::default();
                learning::each_project_embedding(
                    conn,
                    self.project_id,
                    &self.embedder,
                    |id, v| {
                        // A vector of another size is not this embedder's; it is left out.
                        let _ = loaded.insert(id, v);
                    },
                )?;
                *self.vectors.write().map_err(|_| poisoned())? = loaded;
                seq
            }
        };
        let (mut fresh, mut gone) = (Vec::new(), Vec::new());
        loop {
            let rows = learning::embeddings_since(conn, seq, PAGE)?;
            let full = rows.len() == PAGE;
            for row in rows {
                seq = seq.max(row.seq);
                if row.project_id != self.project_id {
                    continue;
                }
                match row.embedder == self.embedder {
                    true => fresh.push((row.item_id, row.vector)),
                    false => gone.push(row.item_id),
                }
            }
            if !full {
                break;
            }
        }
        if !fresh.is_empty() || !gone.is_empty() {
            let mut vectors = self.vectors.write().map_err(|_| poisoned())?;
            for id in gone {
                vectors.remove(id);
            }
            for (id, v) in &fresh {
                // A vector of another size is another embedder's; it is not this index's.
                let _ = vectors.insert(*id, v);
            }
        }
        *mark = Some(seq);
        Ok(())
    }

    /// The `k` nearest items to `query`, `skip` left out, re-scored from the stored vectors.
    fn nearest(
        &self,
        conn: &Connection,
        query: &[f32],
        k: usize,
        skip: Option<i64>,
    ) -> crate::store::Result<Similar> {
        self.catch_up(conn)?;
        let (found, searched) = {
            let vectors = self.vectors.read().map_err(|_| poisoned())?;
            // Twice as many candidates as asked for, re-scored below: what the int8 codes
            // misrank at the edge of the top k comes back.
            let found = vectors
                .nearest(query, 2 * k, &|id| Some(id) == skip)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", self.embedder)))?;
            (found, vectors.len())
        };
        let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
        let exact = learning::embeddings_from(conn, &ids, &self.embedder)?;
        let mut texts: HashMap<i64, items::ItemText> = items::texts(conn, &ids)?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        let mut out: Vec<Neighbour> = ids
            .iter()
            .filter_map(|id| {
                let t = texts.remove(id)?;
                let v = exact.get(id)?;
                Some(Neighbour {
                    id: *id,
                    ext_id: t.ext_id,
                    text: t.text,
                    similarity: crate::engine::cosine(query, v),
                })
            })
            .collect();
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
        out.truncate(k);
        Ok(Similar {
            items: out,
            searched,
            embedder: self.embedder.clone(),
        })
    }
}

impl App {
    /// The embedder whose vectors are searched, if the server runs a model with one; without,
    /// `similar_to_item` searches the vectors of the embedder that embedded the item.
    fn search_embedder(&self) -> Option<String> {
        self.model
            .as_ref()
            .and_then(|m| m.embedder_id())
            .map(String::from)
    }

    /// The `k` items of the project most like `item_id`, the item itself left out. The caller
    /// bounds `k`.
    pub async fn similar_to_item(
        &self,
        user: User,
        project_id: i64,
        item_id: i64,
        k: usize,
    ) -> Result<Similar, AppError> {
        let embedder = self.search_embedder();
        let (embedder, vector) = self
            .read(move |c| {
                let what = format!("item {item_id}");
                projects::visible_for(c, &user, project_id, &what)?;
                if items::project_of(c, item_id)? != project_id {
                    return Err(StoreError::NotFound(what));
                }
                learning::embedding_of(c, item_id, embedder.as_deref())?.ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "item {item_id} has no embedding yet: pre-labeling embeds every item"
                    ))
                })
            })
            .await?;
        let similar = self.similar.clone();
        self.read(move |c| similar.search(c, project_id, &embedder, &vector, k, Some(item_id)))
            .await
    }

    /// The `k` items of the project closest in meaning to `text`, embedded by the model's
    /// embedder.
    pub async fn similar_to_text(
        &self,
        user: User,
        project_id: i64,
        text: String,
        k: usize,
    ) -> Result<Similar, AppError> {
        let model = self.require_model("a search by meaning needs the model's embedder")?;
        let embedder = model
            .embedder_id()
            .map(String::from)
            .ok_or(AppError::NoModel(
                "a search by meaning needs the sentence embedder, and this model has none",
            ))?;
        self.read(move |c| projects::visible(c, &user, project_id).map(drop))
            .await?;
        let model = model.clone();
        let vector = blocking(move || model.embed(vec![text]))
            .await??
            .pop()
            .ok_or(AppError::Stopped("the embedder returned nothing"))?;
        let similar = self.similar.clone();
        self.read(move |c| similar.search(c, project_id, &embedder, &vector, k, None))
            .await
    }
}
