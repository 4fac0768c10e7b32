//! Plugin trust: files other users can write are refused; with a lock file only the pinned plugins,
//! unchanged, load.

use l2l_system_tests::{host_binary, install_testkit};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn host(args: &[&str], cwd: &Path, lock: Option<&Path>) -> Output {
    let mut command = Command::new(host_binary());
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("L2L_PLUGIN_PATH")
        .env_remove("L2L_PLUGIN_LOCK");
    if let Some(lock) = lock {
        command.env("L2L_PLUGIN_LOCK", lock);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_plugin_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = install_testkit(&plugins);
    let dirs = plugins.to_str().unwrap();
    assert!(host(&["plugins", "list", "--plugin-dir", dirs], dir.path(), None)
        .status
        .success());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = host(&["plugins", "list", "--plugin-dir", dirs], dir.path(), None);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("writable by other users") && err.contains("libl2l_testkit"),
        "{err}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = stderr(&host(&["plugins", "list", "--plugin-dir", dirs], dir.path(), None));
    assert!(
        err.contains("its directory") && err.contains("writable by other users"),
        "{err}"
    );
}

/// A link does not launder a plugin: the file it leads to and every directory above that are checked —
/// a library in a directory anyone can write, linked from a safe one, is refused, and so is one that
/// belongs to another user.
#[test]
fn a_plugin_behind_a_link_or_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open_dir = dir.path().join("anyone-can-write");
    std::fs::create_dir(&open_dir).unwrap();
    let file = install_testkit(&open_dir);
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let safe = dir.path().join("plugins");
    std::fs::create_dir(&safe).unwrap();
    std::os::unix::fs::symlink(&file, safe.join("libl2l_linked.so")).unwrap();
    let out = host(
        &["plugins", "list", "--plugin-dir", safe.to_str().unwrap()],
        dir.path(),
        None,
    );
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("anyone-can-write")
            && err.contains("writable by other users")
            && err.contains("linked from"),
        "{err}"
    );
    // as root (CI): a plugin file of another user, in a safe directory
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_file(safe.join("libl2l_linked.so")).unwrap();
        let theirs = install_testkit(&safe);
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let err = stderr(&host(
            &["plugins", "list", "--plugin-dir", safe.to_str().unwrap()],
            dir.path(),
            None,
        ));
        assert!(err.contains("belongs to another user (uid 65534)"), "{err}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: the ownership check must run there"
        );
    }
}

#[test]
fn with_a_lock_only_pinned_unchanged_plugins_load() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let file = install_testkit(&plugins);
    let dirs = plugins.to_str().unwrap();
    let lock = dir.path().join("l2l-plugins.lock");
    let out = host(
        &[
            "plugins",
            "lock",
            "--plugin-dir",
            dirs,
            "--output",
            lock.to_str().unwrap(),
        ],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&lock).unwrap().contains("libl2l_testkit"));
    // the lock in the working directory is in effect: everything pinned still loads
    let out = host(&["plugins", "list", "--plugin-dir", dirs], dir.path(), None);
    assert!(out.status.success(), "{}", stderr(&out));
    // an unknown plugin is refused
    let other = plugins.join("libl2l_other_testkit.so");
    std::fs::copy(&file, &other).unwrap();
    let err = stderr(&host(
        &["plugins", "list", "--plugin-dir", dirs],
        dir.path(),
        Some(&lock),
    ));
    assert!(
        err.contains("libl2l_other_testkit.so") && err.contains("not in the plugin lock"),
        "{err}"
    );
    std::fs::remove_file(&other).unwrap();
    // a changed plugin is refused
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(0);
    std::fs::write(&file, bytes).unwrap();
    let out = host(&["plugins", "list", "--plugin-dir", dirs], dir.path(), Some(&lock));
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("changed since it was locked"),
        "{err}"
    );
    // a lock named by the environment that does not exist is an error, not an open door
    let err = stderr(&host(
        &["plugins", "list", "--plugin-dir", dirs],
        dir.path(),
        Some(&dir.path().join("missing.lock")),
    ));
    assert!(err.contains("no such lock file"), "{err}");
}

/// A lock file that does not parse is named as the lock in effect (`$L2L_PLUGIN_LOCK`), not by the
/// default name.
#[test]
fn an_unreadable_lock_is_named_by_its_own_path() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("my.lock");
    std::fs::write(&lock, "this is = not [ a lock").unwrap();
    let err = stderr(&host(&["plugins", "list"], dir.path(), Some(&lock)));
    assert!(err.contains("my.lock") && !err.contains("l2l-plugins.lock"), "{err}");
}
