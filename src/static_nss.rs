//! Host name lookups in a static build (`scripts/build-static.sh`), shared
//! by the `procjon` and `procjonagent` binaries (not part of the library,
//! which forbids unsafe code). Runs on the main thread before any other
//! thread starts.
//!
//! A static glibc program has the `files` and `dns` lookups (/etc/hosts,
//! /etc/resolv.conf) built in, but for any other source named on the
//! `hosts:` line of /etc/nsswitch.conf (`resolve`, `myhostname`, `mdns4`,
//! ...) it loads that module from the host's shared glibc, which may be
//! another version than the one linked in: unsupported, and a crash risk.
//! So a static build looks host names up in /etc/hosts and DNS only. A
//! dynamic build follows nsswitch.conf as usual.

/// In a static glibc build, restricts host lookups to the built-in `files
/// dns`; returns false if glibc refused. Elsewhere does nothing.
pub fn builtin_host_lookups() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_feature = "crt-static"))]
    {
        use std::ffi::{c_char, c_int};
        unsafe extern "C" {
            /// glibc (nss.h): replaces the nsswitch.conf line of a database.
            fn __nss_configure_lookup(dbname: *const c_char, service_line: *const c_char) -> c_int;
        }
        // SAFETY: both arguments are NUL-terminated strings that live for
        // the whole program; glibc copies what it needs. Called once from
        // main before other threads exist, as glibc requires.
        unsafe { __nss_configure_lookup(c"hosts".as_ptr(), c"files dns".as_ptr()) == 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu", target_feature = "crt-static")))]
    {
        true
    }
}
