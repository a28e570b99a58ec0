//! The baseline: what this design costs before procjon does any work. A bare
//! thread-per-connection rustls server with procjon's certificates and TLS
//! configuration (client certificates required) that answers every line with
//! `{"type":"ok"}` without parsing it or keeping any state. Runs as its own
//! process (the harness re-executed with `--serve-baseline`) so that its CPU
//! and RSS can be read like procjon's.
//!
//! Given a file, it also appends every line to it and fsyncs before
//! answering: the floor of a durable registration.

use procjon::frame::OK_LINE;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Same stack and read size as procjon's connection threads.
const STACK: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// `--serve-baseline CA CERT KEY [DURABLE_FILE]`: serves on 127.0.0.1:0 until killed.
pub fn main(args: &[String]) -> ExitCode {
    let [ca, cert, key, rest @ ..] = args else {
        eprintln!("usage: load --serve-baseline CA CERT KEY [DURABLE_FILE]");
        return ExitCode::from(2);
    };
    let tls = match procjon::tls::server_config(Path::new(ca), Path::new(cert), Path::new(key)) {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("baseline: {err}");
            return ExitCode::from(2);
        }
    };
    let durable = match rest.first().map(|path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("baseline: opening {path}: {e}"))
    }) {
        Some(Ok(file)) => Some(Arc::new(Mutex::new(file))),
        Some(Err(err)) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("baseline: binding 127.0.0.1:0: {err}");
            return ExitCode::from(2);
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("baseline listening on {addr}"),
        Err(err) => {
            eprintln!("baseline: {err}");
            return ExitCode::from(2);
        }
    }
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("baseline: accept: {err}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (tls, durable) = (tls.clone(), durable.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || serve(stream, tls, durable.as_deref()));
        if let Err(err) = spawned {
            eprintln!("baseline: spawning a connection thread: {err}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One connection: count complete lines in what arrives, answer each with ok.
fn serve(sock: TcpStream, tls: Arc<ServerConfig>, durable: Option<&Mutex<File>>) {
    let _ = sock.set_nodelay(true);
    let Ok(conn) = ServerConnection::new(tls) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, sock);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut out = Vec::with_capacity(1024);
    // Bytes of an unfinished line carried over to the next read.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = &chunk[..n];
        let lines = data.iter().filter(|&&b| b == b'\n').count();
        if let Some(file) = durable {
            let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            partial.extend_from_slice(&data[..end]);
            if lines > 0 {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                if file
                    .write_all(&partial)
                    .and_then(|()| file.sync_data())
                    .is_err()
                {
                    return;
                }
                partial.clear();
            }
            partial.extend_from_slice(&data[end..]);
        }
        for _ in 0..lines {
            out.extend_from_slice(OK_LINE);
        }
        if !out.is_empty() {
            if stream
                .write_all(&out)
                .and_then(|()| stream.flush())
                .is_err()
            {
                return;
            }
            out.clear();
        }
    }
}
