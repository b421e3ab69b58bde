# Warning and optimisation flags shared by every fastdl target.
function(fastdl_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter -fno-math-errno -fvisibility=hidden>)
endfunction()
