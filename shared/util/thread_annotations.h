// Clang's thread-safety annotations, as LevelDB spells them
// (port/thread_annotations.h). Under clang they expand to the attributes
// that -Wthread-safety checks (an error in the clang build, see the root
// meson.build); under any other compiler to nothing.
//
//   Mutex mu_;                         // what it guards, its lock order
//   int count_ GUARDED_BY(mu_);        // read or written only with mu_ held
//   Item* items_ PT_GUARDED_BY(mu_);   // *items_ only with mu_ held
//   void AddLocked() REQUIRES(mu_);    // the caller holds mu_
//   void Add() EXCLUDES(mu_);          // the caller must not hold mu_ (it takes it)
//
// The lock types themselves are in shared/util/mutex.h (std::mutex is not
// annotated in libstdc++). NO_THREAD_SAFETY_ANALYSIS turns the check off for
// one function: use it only where the analysis cannot follow the locking
// (say why next to it), never to silence a finding.
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html
#pragma once

#if defined(__clang__) && !defined(SWIG)
#define DFS_THREAD_ANNOTATION_ATTRIBUTE__(x) __attribute__((x))
#else
#define DFS_THREAD_ANNOTATION_ATTRIBUTE__(x)  // no-op
#endif

// A class whose objects are locks (mutex.h).
#ifndef CAPABILITY
#define CAPABILITY(x) DFS_THREAD_ANNOTATION_ATTRIBUTE__(capability(x))
#endif

// An RAII class that holds a capability for its lifetime (MutexLock).
#ifndef SCOPED_CAPABILITY
#define SCOPED_CAPABILITY DFS_THREAD_ANNOTATION_ATTRIBUTE__(scoped_lockable)
#endif

// A data member read or written only with the given capability held.
#ifndef GUARDED_BY
#define GUARDED_BY(x) DFS_THREAD_ANNOTATION_ATTRIBUTE__(guarded_by(x))
#endif

// A pointer member whose pointee is accessed only with the capability held.
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) DFS_THREAD_ANNOTATION_ATTRIBUTE__(pt_guarded_by(x))
#endif

// Lock order between capabilities of one object (checked with
// -Wthread-safety-beta only).
#ifndef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(acquired_after(__VA_ARGS__))
#endif
#ifndef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(acquired_before(__VA_ARGS__))
#endif

// The caller must hold the capabilities (exclusively / at least shared).
#ifndef REQUIRES
#define REQUIRES(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(requires_capability(__VA_ARGS__))
#endif
#ifndef REQUIRES_SHARED
#define REQUIRES_SHARED(...) \
  DFS_THREAD_ANNOTATION_ATTRIBUTE__(requires_shared_capability(__VA_ARGS__))
#endif

// The function acquires / releases the capabilities (with no argument: the
// object itself, for methods of a CAPABILITY or SCOPED_CAPABILITY class).
#ifndef ACQUIRE
#define ACQUIRE(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(acquire_capability(__VA_ARGS__))
#endif
#ifndef ACQUIRE_SHARED
#define ACQUIRE_SHARED(...) \
  DFS_THREAD_ANNOTATION_ATTRIBUTE__(acquire_shared_capability(__VA_ARGS__))
#endif
#ifndef RELEASE
#define RELEASE(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(release_capability(__VA_ARGS__))
#endif
#ifndef RELEASE_SHARED
#define RELEASE_SHARED(...) \
  DFS_THREAD_ANNOTATION_ATTRIBUTE__(release_shared_capability(__VA_ARGS__))
#endif

// The function tries to acquire the capabilities; the first argument is the
// return value that means success.
#ifndef TRY_ACQUIRE
#define TRY_ACQUIRE(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(try_acquire_capability(__VA_ARGS__))
#endif

// The caller must not hold the capabilities (the function takes them).
#ifndef EXCLUDES
#define EXCLUDES(...) DFS_THREAD_ANNOTATION_ATTRIBUTE__(locks_excluded(__VA_ARGS__))
#endif

// The function checks at run time that the capability is held; the analysis
// assumes it is afterwards.
#ifndef ASSERT_CAPABILITY
#define ASSERT_CAPABILITY(x) DFS_THREAD_ANNOTATION_ATTRIBUTE__(assert_capability(x))
#endif

// The function returns a reference to the capability.
#ifndef RETURN_CAPABILITY
#define RETURN_CAPABILITY(x) DFS_THREAD_ANNOTATION_ATTRIBUTE__(lock_returned(x))
#endif

// Turns the analysis off for one function. Say why next to every use.
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS DFS_THREAD_ANNOTATION_ATTRIBUTE__(no_thread_safety_analysis)
#endif
