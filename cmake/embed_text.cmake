# Embeds a text file (e.g. daemon/src/http/status_page.html) into a binary at build time, so it
# is edited as a file of its own and never pasted into C++.
#
# Included from CMake: rillflow_embed_text(<target> <input> <namespace> <symbol>) generates
# <binary dir>/embedded/<symbol>.cpp (rebuilt whenever <input> changes) and adds it to <target>.
# It defines, in <namespace>:
#   extern const std::string_view <symbol>;               the file's text
#   extern const std::string_view <symbol>ScriptHashes;   'sha256-...' of each inline <script>
#   extern const std::string_view <symbol>StyleHashes;    'sha256-...' of each inline <style>
# The hashes are what a Content-Security-Policy lists to allow exactly these inline blocks
# (script-src / style-src) and nothing else. Declare them in a header of your own.
#
# Run as a script (cmake -DINPUT=.. -DOUTPUT=.. -DNAMESPACE=.. -DSYMBOL=.. -P embed_text.cmake),
# it writes that file: this is the build step the function sets up.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  cmake_policy(VERSION 3.25)  # script mode starts with no policies set
endif()
set(_RILLFLOW_EMBED_TEXT_SCRIPT "${CMAKE_CURRENT_LIST_FILE}")

function(rillflow_embed_text target input namespace symbol)
  set(output "${CMAKE_CURRENT_BINARY_DIR}/embedded/${symbol}.cpp")
  add_custom_command(
    OUTPUT "${output}"
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${output} -DNAMESPACE=${namespace}
            -DSYMBOL=${symbol} -P "${_RILLFLOW_EMBED_TEXT_SCRIPT}"
    DEPENDS "${input}" "${_RILLFLOW_EMBED_TEXT_SCRIPT}"
    COMMENT "Embedding ${input}"
    VERBATIM)
  target_sources(${target} PRIVATE "${output}")
endfunction()

# The base64 of the bytes a hex string spells (for CSP hash sources).
function(_rillflow_hex_to_base64 hex out_var)
  set(alphabet "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  string(LENGTH "${hex}" n)
  set(result "")
  set(i 0)
  while(i LESS n)
    math(EXPR left "${n} - ${i}")
    if(left GREATER 6)
      set(left 6)
    endif()
    string(SUBSTRING "${hex}" ${i} ${left} chunk)
    math(EXPR bytes "${left} / 2")
    while(left LESS 6)
      string(APPEND chunk "0")
      math(EXPR left "${left} + 1")
    endwhile()
    math(EXPR value "0x${chunk}")
    foreach(shift 18 12 6 0)
      math(EXPR digit "(${value} >> ${shift}) & 63")
      string(SUBSTRING "${alphabet}" ${digit} 1 c)
      list(APPEND sextets "${c}")
    endforeach()
    math(EXPR keep "${bytes} + 1")
    foreach(k RANGE 0 3)
      list(GET sextets ${k} c)
      if(k LESS keep)
        string(APPEND result "${c}")
      else()
        string(APPEND result "=")
      endif()
    endforeach()
    set(sextets "")
    math(EXPR i "${i} + 6")
  endwhile()
  set(${out_var} "${result}" PARENT_SCOPE)
endfunction()

# The CSP hash sources ('sha256-<base64>' separated by spaces) of every <tag>...</tag> block.
function(_rillflow_inline_hashes text tag out_var)
  set(sources "")
  set(rest "${text}")
  string(LENGTH "<${tag}>" open_length)
  while(TRUE)
    string(FIND "${rest}" "<${tag}>" open)
    if(open EQUAL -1)
      break()
    endif()
    math(EXPR body_start "${open} + ${open_length}")
    string(SUBSTRING "${rest}" ${body_start} -1 rest)
    string(FIND "${rest}" "</${tag}>" close)
    if(close EQUAL -1)
      message(FATAL_ERROR "embed_text: <${tag}> without </${tag}> in ${INPUT}")
    endif()
    string(SUBSTRING "${rest}" 0 ${close} body)
    string(SHA256 digest "${body}")
    _rillflow_hex_to_base64("${digest}" b64)
    if(sources)
      string(APPEND sources " ")
    endif()
    string(APPEND sources "'sha256-${b64}'")
    string(SUBSTRING "${rest}" ${close} -1 rest)
  endwhile()
  set(${out_var} "${sources}" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  foreach(required INPUT OUTPUT NAMESPACE SYMBOL)
    if(NOT DEFINED ${required})
      message(FATAL_ERROR "embed_text: -D${required}=... is required")
    endif()
  endforeach()
  file(READ "${INPUT}" text)
  string(FIND "${text}" "\r" cr)
  if(NOT cr EQUAL -1)
    message(FATAL_ERROR "embed_text: ${INPUT} has CR characters (browsers hash inline blocks "
                        "after turning CRLF into LF, so the CSP hashes would not match)")
  endif()
  set(delimiter "rf_embed")
  string(FIND "${text}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "embed_text: ${INPUT} contains the raw string delimiter )${delimiter}\"")
  endif()
  _rillflow_inline_hashes("${text}" script script_hashes)
  _rillflow_inline_hashes("${text}" style style_hashes)
  get_filename_component(name "${INPUT}" NAME)
  set(cpp "// Generated at build time by cmake/embed_text.cmake from ${name}; do not edit.\n")
  string(APPEND cpp "#include <string_view>\n\nnamespace ${NAMESPACE} {\n\n")
  string(APPEND cpp "extern const std::string_view ${SYMBOL};\n")
  string(APPEND cpp "extern const std::string_view ${SYMBOL}ScriptHashes;\n")
  string(APPEND cpp "extern const std::string_view ${SYMBOL}StyleHashes;\n\n")
  string(APPEND cpp "const std::string_view ${SYMBOL}ScriptHashes = \"${script_hashes}\";\n")
  string(APPEND cpp "const std::string_view ${SYMBOL}StyleHashes = \"${style_hashes}\";\n")
  string(APPEND cpp "const std::string_view ${SYMBOL} = R\"${delimiter}(${text})${delimiter}\";\n")
  string(APPEND cpp "\n}  // namespace ${NAMESPACE}\n")
  # Written only when it changes, so an unchanged page does not recompile.
  set(previous "")
  if(EXISTS "${OUTPUT}")
    file(READ "${OUTPUT}" previous)
  endif()
  if(NOT previous STREQUAL cpp)
    file(WRITE "${OUTPUT}" "${cpp}")
  endif()
endif()
