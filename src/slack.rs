//! The channel: a Slack incoming webhook (the default one, or a team's
//! `--route`), or standard output when no webhook is set. Each is a
//! [`Destination`] for a notifier thread: one post carries every pending
//! line that fits in [`MAX_POST_CHARS`], one line per event, with Slack's
//! control characters escaped.

use crate::notifier::Destination;
use crate::outbound::{self, Outcome};
use crate::secret_url::SecretUrl;
use crate::store::Announcement;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Most characters of text in one post (Slack allows far more; short posts read better).
pub const MAX_POST_CHARS: usize = 3500;

/// A Slack incoming webhook.
pub struct SlackWebhook {
    url: SecretUrl,
    /// The flag that set the URL, for the hint when Slack refuses it.
    flag: String,
    client: ureq::Agent,
}

impl SlackWebhook {
    /// Posts to `url`, set by `flag` (`--slack-webhook`, `--route web=…`);
    /// each post may take `timeout`.
    pub fn new(url: SecretUrl, flag: String, timeout: Duration) -> SlackWebhook {
        SlackWebhook {
            url,
            flag,
            client: outbound::client(timeout),
        }
    }
}

impl Destination for SlackWebhook {
    fn describe(&self) -> String {
        format!("Slack webhook {}", self.url)
    }

    fn batch_len(&self, queue: &VecDeque<Arc<Announcement>>) -> usize {
        lines_that_fit(queue)
    }

    fn deliver(&self, batch: &[Arc<Announcement>]) -> Outcome {
        let body = serde_json::json!({ "text": slack_escape(&joined(batch)) }).to_string();
        outbound::post_json(&self.client, &self.url, &body)
    }

    fn refused_hint(&self) -> String {
        format!(
            "the webhook URL looks wrong or revoked: fix {} and restart",
            self.flag
        )
    }
}

/// Standard output: one line per event (no webhook set).
pub struct Stdout;

impl Destination for Stdout {
    fn describe(&self) -> String {
        "standard output".into()
    }

    fn batch_len(&self, queue: &VecDeque<Arc<Announcement>>) -> usize {
        lines_that_fit(queue)
    }

    fn deliver(&self, batch: &[Arc<Announcement>]) -> Outcome {
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{}", joined(batch)).and_then(|()| out.flush()) {
            Ok(()) => Outcome::Delivered,
            Err(err) => Outcome::Retry {
                after: None,
                reason: err.to_string(),
            },
        }
    }

    fn refused_hint(&self) -> String {
        "standard output can't be written".into()
    }

    fn interval(&self, _configured: Duration) -> Duration {
        // Slack's rate limit doesn't apply to a terminal or a log.
        Duration::ZERO
    }
}

/// How many queued lines fit in one post of at most [`MAX_POST_CHARS`]
/// (at least one).
fn lines_that_fit(queue: &VecDeque<Arc<Announcement>>) -> usize {
    let mut length = 0;
    let mut count = 0;
    for announcement in queue {
        let extra = announcement.text.len() + usize::from(count > 0);
        if count > 0 && length + extra > MAX_POST_CHARS {
            break;
        }
        length += extra;
        count += 1;
    }
    count
}

/// The lines of `batch`, one per event.
fn joined(batch: &[Arc<Announcement>]) -> String {
    let mut text = String::new();
    for (i, announcement) in batch.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&announcement.text);
    }
    text
}

/// Escapes `&`, `<` and `>` as Slack's message formatting requires. Status
/// names are free text chosen by agents: unescaped, a status named
/// `<!channel>` would mention the whole channel, and `<https://x|click>`
/// would post a disguised link.
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_control_sequences_are_escaped() {
        assert_eq!(
            slack_escape("a status changed to <!channel> (was <https://x|click> & co)"),
            "a status changed to &lt;!channel&gt; (was &lt;https://x|click&gt; &amp; co)"
        );
        assert_eq!(slack_escape("web-1 is available"), "web-1 is available");
    }

    #[test]
    fn a_post_takes_the_lines_that_fit() {
        let line = |seq: u64, len: usize| {
            Arc::new(Announcement {
                seq,
                text: "x".repeat(len).into(),
                ..Default::default()
            })
        };
        let queue: VecDeque<_> = [line(1, 2000), line(2, 1499), line(3, 1)].into();
        // 2000 + 1 + 1499 = 3500 fits; the third line would not.
        assert_eq!(lines_that_fit(&queue), 2);
        let huge: VecDeque<_> = [line(1, 9000), line(2, 1)].into();
        assert_eq!(lines_that_fit(&huge), 1);
        assert_eq!(joined(&[line(1, 1), line(2, 2)]), "x\nxx");
    }
}
