//! A preference project's leaderboard: response sources ranked by Bradley–Terry (with bootstrap
//! intervals), Elo in vote order as Chatbot Arena showed it, win rates, and position bias.
use super::ranking::{self, Comparison};
use crate::store::pairs::SourceVote;
use serde::Serialize;

const BOOTSTRAP_ROUNDS: usize = 200;
const BOOTSTRAP_SEED: u64 = 42;
const ELO_K: f64 = 4.0;

#[derive(Debug, Serialize)]
pub struct SourceRank {
    pub source: String,
    /// Bradley–Terry strength on the Elo scale (1000 = average), with a 95% bootstrap interval.
    pub rating: f64,
    pub rating_lo: f64,
    pub rating_hi: f64,
    /// Online Elo over the votes in the order they were cast.
    pub elo: f64,
    pub wins: f64,
    pub losses: f64,
    pub ties: f64,
    pub games: f64,
    /// Wins plus half the ties, over games.
    pub win_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct Leaderboard {
    pub sources: Vec<SourceRank>,
    /// Votes that compared two different sources (ties included).
    pub comparisons: usize,
    pub both_bad: usize,
    /// Decided human votes by the side the winner was shown on.
    pub left_wins: u64,
    pub right_wins: u64,
    /// Share of decided votes won by the left response: 0.5 means no position bias.
    pub left_win_share: Option<f64>,
}

impl Leaderboard {
    pub fn from_votes(votes: &[SourceVote]) -> Leaderboard {
        let mut names: Vec<String> = Vec::new();
        let mut index = |s: &str| match names.iter().position(|n| n == s) {
            Some(i) => i,
            None => {
                names.push(s.to_string());
                names.len() - 1
            }
        };
        let (mut comps, mut both_bad, mut left_wins, mut right_wins) = (Vec::new(), 0, 0u64, 0u64);
        for v in votes {
            let (a, b) = (index(&v.source_a), index(&v.source_b));
            let score = match v.choice.as_str() {
                "a" => 1.0,
                "b" => 0.0,
                "tie" => 0.5,
                _ => {
                    both_bad += 1;
                    continue;
                }
            };
            if let (Some(a_left), true) = (v.a_left, score != 0.5) {
                // The winner was on the left if a won and was shown left, or b won and a was right.
                if (score == 1.0) == a_left {
                    left_wins += 1;
                } else {
                    right_wins += 1;
                }
            }
            if a != b {
                comps.push(Comparison { a, b, score });
            }
        }
        let n = names.len();
        let fit = ranking::bradley_terry(n, &comps);
        let rating = ranking::bt_to_elo_scale(&fit.strength);
        let intervals =
            ranking::bootstrap_intervals(n, &comps, BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, 0.95);
        let lo = ranking::bt_to_elo_scale(&intervals.iter().map(|i| i.lo).collect::<Vec<_>>());
        let hi = ranking::bt_to_elo_scale(&intervals.iter().map(|i| i.hi).collect::<Vec<_>>());
        let elo = ranking::elo(n, &comps, ELO_K);
        let rates = ranking::win_rates(n, &comps);
        let mut sources: Vec<SourceRank> = names
            .into_iter()
            .enumerate()
            .map(|(i, source)| SourceRank {
                source,
                rating: rating[i],
                rating_lo: lo[i],
                rating_hi: hi[i],
                elo: elo[i],
                wins: rates[i].wins,
                losses: rates[i].losses,
                ties: rates[i].ties,
                games: rates[i].games,
                win_rate: rates[i].rate,
            })
            .collect();
        sources.sort_by(|x, y| y.rating.total_cmp(&x.rating));
        Leaderboard {
            sources,
            comparisons: comps.len(),
            both_bad,
            left_wins,
            right_wins,
            left_win_share: ranking::left_win_share(left_wins, right_wins),
        }
    }
}
