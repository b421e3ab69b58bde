# Compile each fast kernel file once per ISA into its own namespace
# (fastdl::cpu::ref / avx2 / avx512); the run-time dispatcher picks one. Never -march=native.
set(FASTDL_ISA_FLAGS_ref "")
set(FASTDL_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
set(FASTDL_ISA_FLAGS_avx512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c
    -mprefer-vector-width=512)

function(fastdl_add_isa_sources target)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    set(isas ref)
  else()
    set(isas ref avx2 avx512)
  endif()
  foreach(isa IN LISTS isas)
    set(obj ${target}_${isa})
    add_library(${obj} OBJECT ${ARGN})
    target_include_directories(${obj} PRIVATE ${PROJECT_SOURCE_DIR}/csrc)
    target_compile_definitions(${obj} PRIVATE FASTDL_ISA_NS=${isa} FASTDL_ISA_${isa}=1)
    target_compile_options(${obj} PRIVATE ${FASTDL_ISA_FLAGS_${isa}} -fno-math-errno -fno-trapping-math -fvisibility=hidden
                           -Wall -Wno-unused-parameter)
    target_link_libraries(${obj} PRIVATE OpenMP::OpenMP_CXX)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${obj}>)
  endforeach()
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    target_compile_definitions(${target} PUBLIC FASTDL_NO_X86_ISA=1)
  endif()
endfunction()
