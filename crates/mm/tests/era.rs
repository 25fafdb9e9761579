//! Eras and switches: the presets follow KERNEL.md's table and every switch is
//! documented and flippable.

use cowbreak_mm::{Arch, Axis, Era, Policy, SWITCHES};

#[test]
fn every_switch_is_documented_with_a_commit_and_flippable() {
    for s in SWITCHES {
        assert!(!s.doc.trim().is_empty(), "{} has no doc", s.name);
        assert!(
            !s.commit.is_empty() && !s.kernel.is_empty(),
            "{} has no commit",
            s.name
        );
        let mut p = Policy::default();
        assert_eq!(p.get(s.name), Some(false));
        p.set(s.name, true).unwrap();
        assert_eq!(p.get(s.name), Some(true));
        // Exactly one field moved.
        assert_eq!(p.iter().filter(|&(_, on)| on).count(), 1, "{}", s.name);
    }
    assert_eq!(Policy::default().iter().count(), SWITCHES.len());
}

#[test]
fn unknown_switches_and_eras_suggest_the_closest_name() {
    let err = Policy::default().set("write_protect_sq", true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown switch `write_protect_sq` (did you mean `write_protect_seq`?)"
    );
    let err = Era::from_name("v5.91").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown era `v5.91` (did you mean `v5.9`?)"),
        "{err}"
    );
    assert!(Era::from_name("banana")
        .unwrap_err()
        .to_string()
        .contains("eras are v4.8, v4.9"));
}

#[test]
fn eras_parse_by_name_with_or_without_v() {
    for era in Era::ALL {
        assert_eq!(Era::from_name(era.name()), Ok(era));
        let bare = era.name().strip_prefix('v').unwrap_or(era.name());
        assert_eq!(bare.parse::<Era>(), Ok(era));
    }
}

#[test]
fn presets_follow_the_kernel_history() {
    let on = |era: Era, name: &str| era.policy().get(name).unwrap();
    // The Dirty COW fix is in every era from v4.9 until FOLL_COW went away in v6.0.
    assert!(!on(Era::V4_8, "foll_cow"));
    for era in [
        Era::V4_9,
        Era::V4_15,
        Era::V4_4_289,
        Era::V5_8,
        Era::V5_9,
        Era::V5_19,
    ] {
        assert!(on(era, "foll_cow"), "{era}");
    }
    assert!(!on(Era::V6_0, "foll_cow") && on(Era::V6_0, "no_foll_cow"));
    // The forced COW break only in the 4.4 backport and v5.8.
    for era in Era::ALL {
        assert_eq!(
            on(era, "force_cow_break_on_gup"),
            matches!(era, Era::V4_4_289 | Era::V5_8),
            "{era}"
        );
    }
    // FOLL_PIN from v5.7: not in the 4.4 backport.
    assert!(
        !on(Era::V4_4_289, "foll_pin") && !on(Era::V4_15, "foll_pin") && on(Era::V5_8, "foll_pin")
    );
    assert!(!on(Era::V5_9, "write_protect_seq") && on(Era::V5_11, "write_protect_seq"));
    assert!(!on(Era::V5_18, "anon_exclusive") && on(Era::V5_19, "unshare_on_ro_pin"));
    assert!(!on(Era::V6_1, "unshare_any_cow_mapping") && on(Era::V6_2, "unshare_any_cow_mapping"));
    assert!(!on(Era::V6_0, "anon_exclusive_barriers") && on(Era::V6_1, "anon_exclusive_barriers"));
    assert!(
        !on(Era::V6_0, "khugepaged_ipi_before_table_free")
            && on(Era::V6_1, "khugepaged_ipi_before_table_free")
    );
    // Per-VMA locks from v6.4, their fixes from v6.5 (v6.4 stands for 6.4.0).
    for era in Era::ALL {
        let upstream = era != Era::AaCor;
        assert_eq!(
            on(era, "per_vma_lock"),
            upstream && era >= Era::V6_4,
            "{era}"
        );
        assert_eq!(
            on(era, "migrate_batched_flush"),
            upstream && era >= Era::V6_4,
            "{era}"
        );
        for fix in [
            "fork_locks_parent_vmas",
            "vma_lock_seq_ordering",
            "vma_anon_vma_check_under_lock",
        ] {
            assert_eq!(on(era, fix), upstream && era >= Era::V6_5, "{era}: {fix}");
        }
        // Copy-on-read only in its own tree, whose COW reuse is by mapcount.
        assert_eq!(on(era, "cor_unshare"), !upstream, "{era}");
    }
    assert!(!on(Era::AaCor, "reuse_only_if_refcount_one") && on(Era::AaCor, "write_protect_seq"));
    assert_eq!(Era::from_name("aa-cor"), Ok(Era::AaCor));
    for era in Era::ALL {
        assert!(
            !on(era, "sequential_consistency"),
            "{era}: test switches are off in every preset"
        );
    }
}

#[test]
fn architectures_set_only_their_own_switches() {
    for era in Era::ALL {
        let x86 = Policy::preset(era, Arch::X86);
        let arm64 = Policy::preset(era, Arch::Arm64);
        assert_eq!(x86, era.policy(), "{era}: x86 is the default");
        for (name, _) in x86.diff(&arm64) {
            let axis = SWITCHES.iter().find(|s| s.name == name).unwrap().axis;
            assert_eq!(axis, Axis::Arch, "{era}: {name} differs between the arches");
        }
        assert!(x86.tso && x86.tlb_flush_ipi && !x86.rcu_table_free, "{era}");
        assert!(
            !arm64.tso && !arm64.tlb_flush_ipi && arm64.rcu_table_free,
            "{era}"
        );
        // x86 moved to the generic fast GUP in v4.13 (e585513b76f7).
        assert_eq!(
            x86.x86_gup_fast,
            matches!(era, Era::V4_8 | Era::V4_9 | Era::V4_4_289),
            "{era}"
        );
        assert!(!arm64.x86_gup_fast, "{era}");
    }
}

#[test]
fn arches_parse_by_name_and_suggest() {
    for a in Arch::ALL {
        assert_eq!(Arch::from_name(a.name()), Ok(a));
    }
    assert_eq!(Arch::from_name("aarch64"), Ok(Arch::Arm64));
    let err = Arch::from_name("arm46").unwrap_err().to_string();
    assert!(err.contains("did you mean `arm64`"), "{err}");
}

#[test]
fn unmodeled_eras_say_what_they_leave_out() {
    let mut p = Era::V6_0.policy();
    p.set("anon_exclusive_barriers", true).unwrap();
    p.set("khugepaged_ipi_before_table_free", true).unwrap();
    assert_eq!(
        p,
        Era::V6_1.policy(),
        "v6.1 adds only 088b8aa537c2's barriers and 2ba99c5e0881's IPI"
    );
    let mut p = Era::V5_11.policy();
    p.set("thp_reuse_only_if_refcount_one", true).unwrap();
    p.set("pin_folio_ref_add", true).unwrap();
    assert_eq!(
        p,
        Era::V5_18.policy(),
        "v5.18 adds the THP refcount rule (and the two-step pin of v5.14)"
    );
    for era in [Era::V5_18, Era::V6_1] {
        assert!(
            era.unmodeled().is_some(),
            "{era} must say what it does not model"
        );
    }
    // An era whose preset is the one before's changed only paths outside the model,
    // and must say which.
    for pair in Era::ALL.windows(2) {
        for arch in Arch::ALL {
            if Policy::preset(pair[0], arch) == Policy::preset(pair[1], arch) {
                assert!(
                    pair[1].unmodeled().is_some(),
                    "{} has {}'s preset on {arch} and does not say why",
                    pair[1],
                    pair[0]
                );
            }
        }
    }
}

#[test]
fn v4_15_differs_from_v4_9_by_the_huge_dirty_cow_fix() {
    // On arm64: on x86 the eras also differ by x86's own fast GUP (gone in v4.13).
    let mut p = Policy::preset(Era::V4_9, Arch::Arm64);
    p.set("touch_pmd_dirty_only_on_write", true).unwrap();
    assert_eq!(p, Policy::preset(Era::V4_15, Arch::Arm64));
    // Backported to the 4.4 stable series long before 4.4.289.
    assert!(Era::V4_4_289.policy().touch_pmd_dirty_only_on_write);
}

/// `ReadPolicy` notes exactly the switches read, in every reader's shared `SwitchReads`,
/// and the bit sets round-trip through names.
#[test]
fn a_read_policy_notes_the_switches_read() {
    use cowbreak_mm::{ReadPolicy, SwitchReads};
    let reads = SwitchReads::default();
    let policy = Policy::preset(Era::V5_9, Arch::X86);
    let p = ReadPolicy::new(policy, reads.clone());
    assert_eq!(reads.get(), 0);
    assert!(p.foll_cow());
    assert!(!p.anon_exclusive());
    assert!(p.foll_cow());
    assert_eq!(
        SwitchReads::names(reads.get()),
        ["foll_cow", "anon_exclusive"]
    );
    // A clone notes into the same set; a default one into its own.
    let q = ReadPolicy::new(policy, reads.clone());
    q.write_protect_seq();
    assert_eq!(reads.get().count_ones(), 3);
    let other = SwitchReads::default();
    ReadPolicy::new(policy, other.clone()).tso();
    assert_eq!(SwitchReads::names(other.get()), ["tso"]);
    assert_eq!(
        SwitchReads::from_names(SwitchReads::names(reads.get())),
        Some(reads.get())
    );
    assert_eq!(SwitchReads::from_names(["no_such_switch"]), None);
    // `bits` sets a switch's bit exactly when the switch is on.
    for (i, (name, on)) in policy.iter().enumerate() {
        assert_eq!(policy.bits() >> i & 1 == 1, on, "{name}");
    }
}
