// What a test can measure in this build. Under AddressSanitizer a process's
// memory is not the product's (freed blocks wait in a 256 MiB quarantine,
// every allocation carries redzones and shadow), so memory bounds are checked
// in the plain build and only reported under ASan.
#pragma once

namespace dfs::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kMemoryMeasurable = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kMemoryMeasurable = false;
#else
inline constexpr bool kMemoryMeasurable = true;
#endif
#else
inline constexpr bool kMemoryMeasurable = true;
#endif

}  // namespace dfs::testing
