"""Readers (CNTK's ``cntk.io``): ``MinibatchSource`` over CTF files and image map files
(``CTFDeserializer``, ``ImageDeserializer``) with ``StreamDef(s)``,
``MinibatchSourceFromData`` over numpy arrays, ``MinibatchData``."""

from .. import _np as np

from .. import _rntk
from ..variables import Record

__all__ = ['MinibatchSource', 'MinibatchSourceFromData', 'CTFDeserializer', 'ImageDeserializer',
           'HTKFeatureDeserializer', 'HTKMLFDeserializer', 'CBFDeserializer', 'StreamDef',
           'StreamDefs', 'StreamConfiguration', 'StreamInformation', 'MinibatchData',
           'INFINITELY_REPEAT', 'FULL_DATA_SWEEP', 'DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS',
           'UserMinibatchSource', 'UserDeserializer', 'TraceLevel', 'sequence_to_cntk_text_format',
           'transforms']

INFINITELY_REPEAT = _rntk.infinitely_repeat()
FULL_DATA_SWEEP = _rntk.full_data_sweep()
DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS = _rntk.default_window_chunks()
MinibatchData = _rntk.MinibatchData


class TraceLevel(object):
    Error = 0
    Warning = 1
    Info = 2


def StreamDef(field=None, shape=None, is_sparse=False, transforms=None, context=None, scp=None,
              mlf=None, broadcast=None, defines_mb_size=False, max_sequence_length=65535):
    """One stream: its field in the file, its dimension, dense or sparse."""
    return Record(stream_alias=field, dim=shape, is_sparse=is_sparse, transforms=transforms,
                  context=context, scp=scp, mlf=mlf, broadcast=broadcast,
                  defines_mb_size=defines_mb_size)


StreamConfiguration = StreamDef


def StreamDefs(**streams):
    """The streams of a deserializer, by the names the source exposes."""
    return Record(**streams)


class CTFDeserializer(object):
    """CNTK Text Format files."""

    def __init__(self, filename, streams):
        self.filename, self.streams = str(filename), streams

    def _defs(self):
        out = []
        for name, s in self.streams.items():
            dim = s['dim']
            if dim is None:
                raise ValueError("StreamDef '%s' needs shape=" % name)
            dim = int(np.prod(dim)) if not np.is_scalar(dim) else int(dim)
            out.append((name, s['stream_alias'] or name, dim, bool(s['is_sparse']),
                        bool(s['defines_mb_size'])))
        return out


def _not_in_rntk(what):
    def ctor(*args, **kwargs):
        raise NotImplementedError('%s: not in rntk yet (rntk reads CTF files, images and in-memory data)' % what)
    ctor.__name__ = what
    return ctor


class ImageDeserializer(object):
    """Images listed in a map file (``path<TAB>label`` lines; ``archive.zip@/inner/path``
    for zip entries): one stream with ``field='image'`` (decoded to (C, H, W), BGR,
    0-255, put through its ``transforms``: crop, scale, mean, color) and one with
    ``field='label'`` (one-hot of ``shape`` classes)."""

    def __init__(self, filename, streams):
        self.filename, self.streams = str(filename), streams
        image = [(n, s) for n, s in streams.items() if s['stream_alias'] == 'image']
        label = [(n, s) for n, s in streams.items() if s['stream_alias'] == 'label']
        if len(image) != 1 or len(label) != 1 or len(streams) != 2:
            raise ValueError("ImageDeserializer(%s): needs exactly one StreamDef(field='image', "
                             "transforms=[...]) and one StreamDef(field='label', shape=classes)"
                             % self.filename)
        (self._features, fs), (self._labels, ls) = image[0], label[0]
        if ls['dim'] is None:
            raise ValueError("ImageDeserializer: StreamDef '%s' (the labels) needs shape="
                             % self._labels)
        dim = ls['dim']
        self._classes = int(np.prod(dim)) if not np.is_scalar(dim) else int(dim)
        self._transforms = [dict(t) for t in (fs['transforms'] or [])]

    def _spec(self):
        return (self.filename, self._features, self._labels, self._classes, self._transforms)


HTKFeatureDeserializer = _not_in_rntk('HTKFeatureDeserializer')
HTKMLFDeserializer = _not_in_rntk('HTKMLFDeserializer')
CBFDeserializer = _not_in_rntk('CBFDeserializer')


class UserMinibatchSource(object):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError('UserMinibatchSource: not in rntk yet')


class UserDeserializer(UserMinibatchSource):
    pass


class StreamInformation(object):
    """A stream of a source (CNTK's ``StreamInformation``); usable as a dict key."""

    __slots__ = ('name', 'shape', 'is_sparse', '_source')

    def __init__(self, name, shape, is_sparse, source):
        self.name, self.shape, self.is_sparse, self._source = name, tuple(shape), is_sparse, source

    @property
    def m_name(self):
        return self.name

    @property
    def sample_shape(self):
        return self.shape

    def __hash__(self):
        return hash((id(self._source), self.name))

    def __eq__(self, other):
        return isinstance(other, StreamInformation) and other._source is self._source and \
            other.name == self.name

    def __repr__(self):
        return "StreamInformation(name='%s', shape=%s, is_sparse=%s)" % (self.name, self.shape,
                                                                        self.is_sparse)


class _Base(object):
    def _init_streams(self):
        self.streams = Record()
        for name, shape, sparse in self._s.streams():
            self.streams[name] = StreamInformation(name, shape, sparse, self)
        self._map_cache = (None, None)

    def stream_info(self, name):
        return self.streams[name]

    def stream_infos(self):
        return list(self.streams.values())

    def next_minibatch(self, minibatch_size_in_samples, input_map=None, device=None,
                       num_data_partitions=None, partition_index=None):
        """``{Variable: MinibatchData}`` (with ``input_map``) or
        ``{StreamInformation: MinibatchData}``; empty at the end of the data. With
        ``num_data_partitions`` (distributed training) the size counts the samples of all
        workers and this worker gets partition ``partition_index`` of the minibatch
        (split by chunk, as CNTK's; empty when none of its sequences is in it)."""
        parts = 1 if num_data_partitions is None else int(num_data_partitions)
        index = 0 if partition_index is None else int(partition_index)
        size = int(minibatch_size_in_samples)
        if input_map is None:
            raw = self._s.next_minibatch(size, None, parts, index)
            return {self.streams[k]: v for k, v in raw.items()}
        key, pairs = self._map_cache
        if key is not input_map:
            pairs = [(k, s.name if isinstance(s, StreamInformation) else str(s))
                     for k, s in input_map.items()]
            self._map_cache = (input_map, pairs)
        return self._s.next_minibatch(size, pairs, parts, index)

    def get_checkpoint_state(self):
        return self._s.get_checkpoint_state()

    def restore_from_checkpoint(self, checkpoint):
        self._s.restore_from_checkpoint(checkpoint)

    @property
    def is_distributed(self):
        return False


class MinibatchSource(_Base):
    """Minibatches from deserializers (CTF files, images), randomized per sweep or in order."""

    def __init__(self, deserializers, max_samples=INFINITELY_REPEAT, max_sweeps=INFINITELY_REPEAT,
                 randomization_window_in_chunks=DEFAULT_RANDOMIZATION_WINDOW_IN_CHUNKS,
                 randomization_window_in_samples=0, randomization_seed=0,
                 trace_level=TraceLevel.Warning, multithreaded_deserializer=None, frame_mode=False,
                 truncation_length=0, randomize=True):
        if not isinstance(deserializers, (list, tuple)):
            deserializers = [deserializers]
        files, images = [], []
        for d in deserializers:
            if isinstance(d, CTFDeserializer):
                files.append((d.filename, d._defs()))
            elif isinstance(d, ImageDeserializer):
                images.append(d._spec())
            else:
                raise NotImplementedError('rntk reads CTF files (CTFDeserializer) and images '
                                          '(ImageDeserializer); got %s' % type(d).__name__)
        if randomization_window_in_samples:
            randomization_window_in_chunks = 0
        self._s = _rntk.Source.open(files, images, bool(randomize), int(max_samples), int(max_sweeps),
                                   int(randomization_window_in_chunks),
                                   int(randomization_window_in_samples), int(randomization_seed),
                                   bool(frame_mode), int(truncation_length))
        self._init_streams()


class MinibatchSourceFromData(_Base):
    """Minibatches from in-memory data: ``{name: array (N, *S) or list of (T_i, *S)}``."""

    def __init__(self, data_streams, max_samples=INFINITELY_REPEAT):
        streams = []
        for name, data in data_streams.items():
            if isinstance(data, (list, tuple)):
                streams.append((name, [np.ascontiguousarray(x, dtype=np.float32) for x in data], True))
            else:
                streams.append((name, np.ascontiguousarray(data, dtype=np.float32), False))
        self._s = _rntk.Source.from_data(streams, int(max_samples))
        self._init_streams()


def sequence_to_cntk_text_format(seq_idx, alias_tensor_map):
    """One sequence as CTF lines (CNTK's helper)."""
    lines = []
    n = max(len(v) for v in alias_tensor_map.values())
    for t in range(n):
        parts = [str(seq_idx)]
        for alias, tensor in alias_tensor_map.items():
            if t < len(tensor):
                row = np.asarray(tensor[t]).reshape(-1)
                parts.append('|%s %s' % (alias, ' '.join('%g' % x for x in row)))
        lines.append('\t'.join(parts))
    return '\n'.join(lines)


from . import transforms  # noqa: E402
