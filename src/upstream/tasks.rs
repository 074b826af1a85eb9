//! Tasks on the shared child, scoped to the session that created them. The child keeps one
//! task store for every client, so the bridge remembers which session each task id came back
//! to and lets only that session see it: `tasks/list` is filtered, `tasks/get`, `tasks/result`
//! and `tasks/cancel` of another session's task are refused, and `notifications/tasks/status`
//! goes to the owner alone. A session's own child needs none of this.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::session::Session;
use crate::sync::Lock;

/// Task ids remembered at most; past it, tasks of ended sessions go first, then the oldest.
const MAX_TASKS: usize = 10_000;

/// Which session created each task on the shared child; `S` is what a session's own server
/// is.
#[derive(Debug)]
pub struct TaskOwners<S> {
    owners: Mutex<Owners<S>>,
    /// Whether any task is remembered, readable without the lock: most sessions (Dify's, one
    /// call each) end with no task anywhere, and must not all queue on the lock to learn it.
    any: AtomicBool,
}

#[derive(Debug)]
struct Owners<S> {
    by_task: HashMap<String, Owner<S>>,
    next_seq: u64,
}

#[derive(Debug)]
struct Owner<S> {
    session: Weak<Session<S>>,
    /// Creation order, to forget the oldest first.
    seq: u64,
}

impl<S> Default for TaskOwners<S> {
    fn default() -> Self {
        Self {
            owners: Mutex::new(Owners {
                by_task: HashMap::new(),
                next_seq: 0,
            }),
            any: AtomicBool::new(false),
        }
    }
}

impl<S> TaskOwners<S> {
    /// The child created `task_id` for `session`.
    pub fn created(&self, task_id: &str, session: &Arc<Session<S>>) {
        let mut owners = self.lock();
        if owners.by_task.len() >= MAX_TASKS && !owners.by_task.contains_key(task_id) {
            owners
                .by_task
                .retain(|_, owner| owner.session.strong_count() > 0);
            if owners.by_task.len() >= MAX_TASKS
                && let Some(oldest) = owners
                    .by_task
                    .iter()
                    .min_by_key(|(_, owner)| owner.seq)
                    .map(|(id, _)| id.clone())
            {
                owners.by_task.remove(&oldest);
            }
        }
        let seq = owners.next_seq;
        owners.next_seq += 1;
        owners.by_task.insert(
            task_id.to_owned(),
            Owner {
                session: Arc::downgrade(session),
                seq,
            },
        );
        self.any.store(true, Ordering::Relaxed);
    }

    /// Whether `session` created `task_id`.
    pub fn is_owned_by(&self, task_id: &str, session: &Arc<Session<S>>) -> bool {
        self.owner(task_id)
            .is_some_and(|owner| Arc::ptr_eq(&owner, session))
    }

    /// The session that created `task_id`, if it is still open.
    pub fn owner(&self, task_id: &str) -> Option<Arc<Session<S>>> {
        self.lock()
            .by_task
            .get(task_id)
            .and_then(|owner| owner.session.upgrade())
    }

    /// A session ended: its tasks are no one's to see.
    pub fn session_ended(&self, session: &Arc<Session<S>>) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut owners = self.lock();
        owners.by_task.retain(|_, owner| {
            owner
                .session
                .upgrade()
                .is_some_and(|s| !Arc::ptr_eq(&s, session))
        });
        self.any
            .store(!owners.by_task.is_empty(), Ordering::Relaxed);
    }

    /// Remembers the task an answer to a task-augmented request created (`result.task.taskId`).
    pub fn record_from_answer(&self, answer: &[u8], session: &Arc<Session<S>>) {
        #[derive(Deserialize)]
        struct Answer {
            result: Option<Created>,
        }
        #[derive(Deserialize)]
        struct Created {
            task: Option<Task>,
        }
        #[derive(Deserialize)]
        struct Task {
            #[serde(rename = "taskId")]
            task_id: String,
        }
        if let Ok(Answer {
            result: Some(Created {
                task: Some(Task { task_id }),
            }),
        }) = serde_json::from_slice::<Answer>(answer)
        {
            self.created(&task_id, session);
        }
    }

    /// A `tasks/list` answer keeping only the tasks `session` created; `None` when the answer
    /// cannot be read (it is then not handed out at all).
    pub fn only_tasks_of(
        &self,
        answer: Vec<Bytes>,
        session: &Arc<Session<S>>,
    ) -> Option<Vec<Bytes>> {
        let whole = answer.concat();
        let mut message = serde_json::from_slice::<Map<String, Value>>(&whole).ok()?;
        let Some(result) = message.get_mut("result") else {
            // An error answer names no task.
            return Some(answer);
        };
        let Some(Value::Array(tasks)) = result.get_mut("tasks") else {
            return None;
        };
        tasks.retain(|task| {
            task.get("taskId")
                .and_then(Value::as_str)
                .is_some_and(|id| self.is_owned_by(id, session))
        });
        serde_json::to_vec(&message)
            .ok()
            .map(|filtered| vec![Bytes::from(filtered)])
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owners<S>> {
        self.owners.locked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ids::SessionIds;
    use crate::session::{ClientCapabilities, NewSession, Sessions, Transport};
    use std::time::Duration;

    fn two_sessions() -> (Sessions<()>, Arc<Session<()>>, Arc<Session<()>>) {
        let sessions = Sessions::new(10, Duration::from_secs(60), SessionIds::Random);
        let new = || NewSession {
            protocol_version: "2025-11-25",
            client: ClientCapabilities::default(),
            tools: crate::tools::View::Plain,
            transport: Transport::Streamable,
            own_server: None,
        };
        let a = sessions.create(new());
        let b = sessions.create(new());
        (sessions, a, b)
    }

    #[test]
    fn a_session_sees_only_the_tasks_it_created() {
        let (_sessions, a, b) = two_sessions();
        let owners = TaskOwners::<()>::default();
        owners.record_from_answer(
            br#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t-a","status":"working"}}}"#,
            &a,
        );
        assert!(owners.is_owned_by("t-a", &a));
        assert!(!owners.is_owned_by("t-a", &b));
        assert!(!owners.is_owned_by("unknown", &a));
        let list = vec![Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":2,"result":{"tasks":[{"taskId":"t-a"},{"taskId":"t-x"}]}}"#,
        )];
        let for_b: Value =
            serde_json::from_slice(&owners.only_tasks_of(list.clone(), &b).unwrap().concat())
                .unwrap();
        assert_eq!(for_b["result"]["tasks"], serde_json::json!([]));
        let for_a: Value =
            serde_json::from_slice(&owners.only_tasks_of(list, &a).unwrap().concat()).unwrap();
        assert_eq!(
            for_a["result"]["tasks"],
            serde_json::json!([{"taskId": "t-a"}])
        );
        assert!(
            owners
                .only_tasks_of(vec![Bytes::from_static(b"{\"result\":{}}")], &a)
                .is_none(),
            "a list that cannot be filtered is not handed out"
        );
        owners.session_ended(&a);
        assert!(owners.owner("t-a").is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let (_sessions, a, _b) = two_sessions();
        let owners = TaskOwners::<()>::default();
        for n in 0..MAX_TASKS + 10 {
            owners.created(&format!("t{n}"), &a);
        }
        assert_eq!(owners.lock().by_task.len(), MAX_TASKS);
        assert!(owners.owner("t0").is_none(), "the oldest went first");
        assert!(owners.owner(&format!("t{}", MAX_TASKS + 9)).is_some());
    }
}
