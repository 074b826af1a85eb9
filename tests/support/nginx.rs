//! nginx (Debian's package) in front of bridge replicas, configured by the shipped
//! `deploy/nginx/mcp-bridge.conf` with only its addresses replaced, run from a directory of its
//! own and stopped on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

/// The shipped site config, as written.
pub fn shipped_site() -> String {
    let path = repo_root().join("deploy/nginx/mcp-bridge.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running nginx. Dropping it stops it.
pub struct Nginx {
    process: Option<Child>,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Nginx {
    /// Starts nginx on `site` (a shipped config, maybe edited), with its replicas
    /// `bridge-N:8000` replaced by `replicas` (`host:port`, in order) and its listen port by a
    /// free loopback one.
    pub fn start(site: &str, replicas: &[&str]) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("nginx is missing: run scripts/install-test-deps (Debian's nginx package)");
        let port = free_port();
        let mut site = site.replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
        for (index, replica) in replicas.iter().enumerate() {
            let name = format!("bridge-{}:8000", index + 1);
            assert!(site.contains(&name), "the site config has no {name}");
            site = site.replace(&name, replica);
        }
        assert!(
            !site.contains("bridge-"),
            "the site config names more replicas than were given"
        );

        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mcp-bridge-nginx-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nginx directory");
        std::fs::write(dir.join("site.conf"), site).expect("site.conf");
        // The main config a distribution would have, pointed at this directory.
        let d = dir.display();
        let main = format!(
            "daemon off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n\
                 access_log off;\n\
                 client_body_temp_path {d}/body;\n\
                 proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n\
                 uwsgi_temp_path {d}/uwsgi;\n\
                 scgi_temp_path {d}/scgi;\n\
                 include {d}/site.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf");

        // nginx on this directory: its error log from the start, its config, its prefix.
        let nginx = || {
            let mut command = Command::new(binary);
            command
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"));
            command
        };
        let check = nginx().arg("-t").output().expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx -t refused the config:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let process = nginx()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx {
            process: Some(process),
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its log:\n{}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// nginx's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let workers = super::descendants_of(process.id() as i32);
            // SIGTERM: the master stops its workers and exits.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(process.id() as i32, libc::SIGTERM);
            }
            let _ = process.wait();
            super::assert_no_survivors(&workers);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
